"""Two shards: entities spread by id, index rows by their shard_on value.

python examples/sharded.py            # two SQLite files in a temporary directory
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index

folder = Path(tempfile.mkdtemp())
store = schemaless.connect([f"sqlite:///{folder / 's0.db'}", f"sqlite:///{folder / 's1.db'}"])
store.migrate()
store.add_index(
    Index("post_by_user", kind="post", fields={"user_id": "int", "n": "int"}, shard_on="user_id")
)
store.put_many("post", [{"user_id": n % 10, "n": n} for n in range(100)])
Worker(store, burst=True, install_signal_handlers=False).run()

shard = store.shards.shard_for_value(3)
posts = [p["n"] for p in store.query("post").filter(user_id=3).order_by("-n")[:5]]
print(f"user 3's rows live on shard {shard}; newest posts: {posts}")
merged = store.query("post").filter(user_id__in=[1, 2]).order_by("n").count()
print(f"users 1 and 2, merged across shards: {merged} posts")
