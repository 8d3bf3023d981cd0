"""``manage.py schemaless_status [--json]``: the change log's lag and every index's state."""

from __future__ import annotations

import json
from typing import Any

from schemaless.status import format_status, status

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    help = "Show the schemaless change log's lag and every index's state."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true")

    def run(self, store: Any, **options: Any) -> None:
        data = status(store)
        self.stdout.write(
            json.dumps(data, indent=2, default=str) if options["json"] else format_status(data)
        )
