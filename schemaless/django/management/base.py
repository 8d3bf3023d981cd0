"""SchemalessCommand: what every ``schemaless_*`` management command shares.

The work is the CLI's and the daemons' (``schemaless.status``, ``indexer.worker``,
``indexer.backfill``, ``indexer.cleaner``); a command only finds the store through the Django
settings and reports the way Django commands do: output on ``self.stdout``, failures as
``CommandError`` (exit status 1 from ``manage.py``, or the ``returncode`` given; an exception
under ``call_command``). A store error exits with status 2, as the ``schemaless`` command does.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from schemaless.errors import SchemalessError

from ..conf import get_store

STORE_ERROR = 2


class SchemalessCommand(BaseCommand):
    """Runs ``run(store, **options)``; turns store errors into CommandError."""

    def handle(self, *args: Any, **options: Any) -> None:
        _log_to_stderr(options.get("verbosity", 1))
        try:
            self.run(get_store(), **options)
        except SchemalessError as exc:
            raise CommandError(str(exc), returncode=STORE_ERROR) from exc

    def run(self, store: Any, **options: Any) -> None:
        raise NotImplementedError


def _log_to_stderr(verbosity: int) -> None:
    """Show the daemons' progress (our loggers only, at INFO; DEBUG with -v 2) on stderr.

    Nothing changes when the project has configured logging (the root logger has handlers).
    """
    if logging.getLogger().handlers:
        return
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING
    for name in ("schemaless", "indexer"):
        logging.getLogger(name).setLevel(level)
