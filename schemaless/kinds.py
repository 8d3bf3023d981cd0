"""Kind: what a store knows of a kind declared with ``Store.define_kind``.

A kind needs no declaration to be stored; declaring one places it. ``group`` names the shard
group its entities and index rows live in (DESIGN 6, "Shard groups"); ``colocate_on`` names the
body field whose value's bucket its new ids are minted in, so that a user's entities live on the
shard of their ``shard_on="user_id"`` index rows (DESIGN 6, "Colocation"). Declarations are
stored on every shard in ``schemaless_kinds`` and, like index definitions, never change.

    >>> store.define_kind("entry", colocate_on="user_id")
    >>> store.define_kind("history", group="history")
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .dialect import utcnow
from .tables import kinds


@dataclasses.dataclass(frozen=True)
class Kind:
    """A declared kind: its shard group and the field its ids are colocated on (or None)."""

    name: str
    group: str
    colocate_on: str | None = None


def read(conn: Connection) -> dict[str, Kind]:
    """Every declared kind on one shard, by name."""
    return {
        row.kind: Kind(row.kind, row.shard_group, row.colocate_on)
        for row in conn.execute(sa.select(kinds))
    }


def row(kind: Kind) -> dict[str, Any]:
    """The ``schemaless_kinds`` row of a kind."""
    return {
        "kind": kind.name,
        "shard_group": kind.group,
        "colocate_on": kind.colocate_on,
        "created": utcnow(),
    }
