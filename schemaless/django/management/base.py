"""SchemalessCommand: a ``schemaless`` subcommand run as a Django management command.

``manage.py schemaless_indexer | schemaless_backfill | schemaless_verify | schemaless_status``
take the options of ``schemaless indexer | backfill | verify | status`` (defined once, in
:mod:`schemaless.cli`) and run the same code, on the store of a schemaless alias
(``--database ALIAS``; default, the only one) built from that alias's settings with
connections of its own, as a daemon needs (never the Django connection of a request)::

    $ python manage.py schemaless_indexer --burst
    $ python manage.py schemaless_verify entry_user_pub --repair --database entities

Output goes to ``self.stdout``; a failure is a ``CommandError`` carrying the exit status the
``schemaless`` command would have (1: ``verify`` found wrong rows; 2: a store error).
The connections take the alias's NAME, HOST (a path: a Unix socket), PORT, USER, PASSWORD and
the driver's OPTIONS, as Django's own connection does.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from sqlalchemy.engine import URL

from schemaless import cli
from schemaless.errors import SchemalessError

from ..backends.base import StoreWrapper
from ..router import store_aliases


class SchemalessCommand(BaseCommand):
    """Runs the ``schemaless`` subcommand ``name`` on the alias's store."""

    name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = cli.SHARED[self.name].help

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--database", default=None, help="the schemaless alias (default: the only one)"
        )
        cli.store_arguments(parser)
        cli.SHARED[self.name].arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        _log_to_stderr(options["verbosity"])
        urls = store_urls(options["database"] or default_alias())
        namespace = argparse.Namespace(**options, url=urls, verbose=options["verbosity"] > 1)
        try:
            with contextlib.redirect_stdout(self.stdout._out):  # type: ignore[type-var]
                status = cli.run_shared(self.name, namespace)
        except SchemalessError as exc:
            raise CommandError(str(exc), returncode=cli.EXIT_USAGE) from exc
        if status:
            raise CommandError(
                f"schemaless {self.name} exited with status {status}", returncode=status
            )


def default_alias() -> str:
    """The only schemaless alias of the project (shards named by another's SHARDS left out)."""
    aliases = store_aliases()
    if len(aliases) != 1:
        raise CommandError(f"name the schemaless alias with --database (found {aliases})")
    return aliases[0]


def store_urls(alias: str) -> list[str]:
    """The alias and the shards its OPTIONS["SHARDS"] name, as ``name=url`` for the store."""
    if alias not in connections:
        raise CommandError(f"no database alias {alias!r} in DATABASES")
    wrapper = connections[alias]
    if not isinstance(wrapper, StoreWrapper):
        raise CommandError(f"database alias {alias!r} is no schemaless backend")
    return [f"{name}={alias_url(name)}" for name in (alias, *wrapper.schemaless.shards)]


def alias_url(alias: str) -> str:
    """The SQLAlchemy URL of the database a Django alias names (as the test runner set it)."""
    entry = connections[alias].settings_dict
    if connections[alias].vendor == "sqlite":
        name = str(entry["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise CommandError(
                f"alias {alias!r} is an in-memory SQLite database: no daemon can reach it"
            )
        return f"sqlite:///{name}"
    host: str | None = entry.get("HOST") or None
    query = driver_options(alias, entry.get("OPTIONS") or {})
    if host and host.startswith("/"):  # Django's way of naming a Unix socket
        query["unix_socket"], host = host, None
    url = URL.create(
        "mysql+mysqldb",
        username=entry.get("USER") or None,
        password=entry.get("PASSWORD") or None,
        host=host,
        port=int(entry["PORT"]) if entry.get("PORT") else None,
        database=entry.get("NAME") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def driver_options(alias: str, options: dict[str, Any]) -> dict[str, str]:
    """The alias's OPTIONS that Django hands to mysqlclient (``charset``, ``init_command``,
    ``ssl``, ``read_default_file``...), as URL query parameters; ours (upper case) and Django's
    own ``isolation_level`` stay out. A value no URL can carry is a CommandError."""
    query: dict[str, str] = {}
    for key, value in options.items():
        if key.isupper() or key in _DJANGO_ONLY:
            continue
        if key == "ssl" and isinstance(value, dict):
            query.update({f"ssl_{k}": str(v) for k, v in value.items()})
        elif isinstance(value, bool):
            query[key] = str(int(value))
        elif isinstance(value, str | int):
            query[key] = str(value)
        else:
            raise CommandError(
                f"alias {alias!r}: OPTIONS[{key!r}] ({type(value).__name__}) cannot be passed "
                "to the connections of a schemaless command"
            )
    return query


_DJANGO_ONLY = frozenset({"isolation_level"})  # read by Django's backend, not the driver


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
    for name in ("schemaless", "schemaless_indexer", "indexer"):
        logging.getLogger(name).setLevel(level)
