"""``manage.py migrate``: Django's, and from the command line every schemaless alias too.

Django migrates one database per run (``--database``, default ``default``), so a project whose
entities live on a second alias would need a second run before its first page works. Run from
the command line without ``--database``, this migrates ``default`` and then each schemaless
alias (its fixed tables, kinds and indexes). ``call_command("migrate")`` (the test runner's way)
and ``--database ALIAS`` migrate only the one database, exactly as Django does.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from ...router import store_aliases


class Command(migrate.Command):
    from_command_line = False

    def run_from_argv(self, argv: list[str]) -> None:
        self.from_command_line = "--database" not in " ".join(argv)
        super().run_from_argv(argv)

    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if not (self.from_command_line and options["database"] == DEFAULT_DB_ALIAS):
            return
        for alias in store_aliases():
            if alias != DEFAULT_DB_ALIAS:
                if options["verbosity"]:
                    self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
                super().handle(*args, **{**options, "database": alias})
