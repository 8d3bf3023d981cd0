"""``manage.py schemaless_backfill NAME``: build a building index from the stored entities."""

from __future__ import annotations

from typing import Any

from indexer.backfill import Backfill

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    help = "Backfill a building schemaless index, then mark it ready (resumable)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--rate", type=float, default=None, help="at most this many entities/s")
        parser.add_argument("--batch-size", type=int, default=1000)

    def run(self, store: Any, **options: Any) -> None:
        name = options["name"]
        done = Backfill(store, name, rate=options["rate"], batch_size=options["batch_size"]).run()
        self.stdout.write(f"index {name}: backfilled {done} entities")
