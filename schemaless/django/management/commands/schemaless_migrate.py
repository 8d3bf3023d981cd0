"""``manage.py schemaless_migrate``: the fixed tables on every shard, then every model's indexes.

An index added to a kind that holds entities starts ``building``; it is backfilled right away
(with a progress bar on a terminal, log lines otherwise) unless ``--no-backfill`` is given, in
which case ``schemaless_backfill NAME`` builds it later.
"""

from __future__ import annotations

from typing import Any

from indexer.backfill import Backfill

from ...options import get_models
from ..base import SchemalessCommand


class Command(SchemalessCommand):
    help = "Create or upgrade the schemaless tables on every shard, and add the models' indexes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-backfill", action="store_true", help="leave new indexes building")

    def run(self, store: Any, **options: Any) -> None:
        store.migrate()
        self.stdout.write(f"migrated {len(store.shards)} shard(s)")
        for model in get_models():
            for index in model._meta.core_indexes():  # type: ignore[attr-defined]
                state = store.add_index(index)
                self.stdout.write(f"index {index.name} ({model._meta.label}): {state}")  # type: ignore[attr-defined]
                if state == "building" and not options["no_backfill"]:
                    done = Backfill(store, index.name).run()
                    self.stdout.write(f"index {index.name}: backfilled {done} entities")
