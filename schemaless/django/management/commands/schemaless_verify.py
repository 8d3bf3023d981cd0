"""``manage.py schemaless_verify [NAME] [--repair]``: compare indexes with the entities.

Exits 1 when a row is wrong and ``--repair`` was not given, 0 otherwise, as ``schemaless verify``
does: the failure is a ``CommandError(returncode=1)``, so ``manage.py`` exits 1 and
``call_command`` raises it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from indexer.cleaner import Cleaner

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    help = "Verify schemaless indexes against the entities (exit 1 when wrong); --repair fixes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", nargs="?")
        parser.add_argument("--repair", action="store_true")

    def run(self, store: Any, **options: Any) -> None:
        report = Cleaner(store).verify(options["name"], repair=options["repair"])
        self.stdout.write(report.format())
        if not (report.is_clean or options["repair"]):
            raise CommandError(
                "indexes disagree with the entities; run with --repair", returncode=1
            )
