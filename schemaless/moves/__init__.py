"""Moving buckets between shards while the store runs (DESIGN 6, "Moving buckets online").

``schemaless shards add | move | rebalance | list`` run these; see :mod:`.mover` for how a
move goes, :mod:`.copier` for what it copies, :mod:`schemaless.fence` for how a shard refuses
the writes of buckets it no longer owns.

    >>> add_shard(store)                     # the store lists the new shard: migrate it
    >>> mover = Mover(store)
    >>> for move in mover.resume() + mover.plan(parse("0-99"), target="s2"):
    ...     mover.run(move)
"""

from __future__ import annotations

from ..store import Store
from .mover import MoveOptions, Mover
from .plan import encode, parse
from .record import Move, listed

__all__ = ["Move", "MoveOptions", "Mover", "add_shard", "encode", "listed", "parse"]


def add_shard(store: Store) -> None:
    """Bring every shard the store lists into the store: the fixed tables, its name, the maps
    and kinds (``migrate``), and every index's table and registry row. A new shard owns no
    buckets until moves give it some."""
    store.migrate()
    for entry in store.registry.entries():
        store.registry.add(entry.index)  # creates what a shard lacks, changes nothing else
