"""Move: one bucket move's stored state, so that a killed move is found and finished.

A move's row lives in ``schemaless_moves`` on its source and its target shard (primary key
``id``), written at every phase change and after every copied batch. Its phases, in order:

- ``copying``: the buckets' entities (from ``position`` on) and their index rows are copied;
- ``catching_up``: passes copy what changed since ``watermark``, until little is left;
- ``frozen``: the source refuses the buckets' writes (its fence, in the same transaction as
  this phase on the source); the last changes are copied and the map is flipped;
- ``flipped``: the map names the target everywhere (no way back from here);
- ``cleaning``: index rows are re-derived under the new map, the old copies deleted;
- ``done``, or ``aborted`` (rolled back before the flip).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..dialect import utcnow
from ..errors import ShardUnavailable
from ..shards import ShardMap
from ..tables import moves
from .plan import encode, parse

PHASES = ("copying", "catching_up", "frozen", "flipped", "cleaning", "done", "aborted")
COPYING, CATCHING_UP, FROZEN, FLIPPED, CLEANING, DONE, ABORTED = PHASES


@dataclasses.dataclass
class Move:
    """One move of ``buckets`` of shard group ``group`` from ``source`` to ``target``."""

    id: str
    group: str
    buckets: list[int]
    source: str
    target: str
    phase: str = COPYING
    position: bytes | None = None
    copied: int = 0
    total: int = 0
    watermark: dt.datetime | None = None
    frozen_ms: float | None = None
    started: dt.datetime = dataclasses.field(default_factory=utcnow)
    updated: dt.datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def new(cls, group: str, buckets: list[int], source: str, target: str) -> Move:
        return cls(f"m{secrets.token_hex(6)}", group, sorted(buckets), source, target)

    @property
    def is_open(self) -> bool:
        return self.phase not in (DONE, ABORTED)

    @property
    def is_flipped(self) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(FLIPPED) and self.phase != ABORTED

    def row(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["buckets"] = encode(self.buckets)
        values["shard_group"] = values.pop("group")
        return values

    def as_json(self) -> dict[str, Any]:
        """For status and ``shards list``."""
        return {
            "id": self.id,
            "group": self.group,
            "buckets": encode(self.buckets),
            "source": self.source,
            "target": self.target,
            "phase": self.phase,
            "copied": self.copied,
            "total": self.total,
            "frozen_ms": self.frozen_ms,
            "started": self.started.isoformat(),
        }

    def describe(self) -> str:
        progress = f" {self.copied}/{self.total}" if self.phase == COPYING else ""
        frozen = f" frozen {self.frozen_ms:.0f} ms" if self.frozen_ms is not None else ""
        return (
            f"move {self.id}: buckets {encode(self.buckets)} of {self.group} "
            f"{self.source} -> {self.target}: {self.phase}{progress}{frozen}"
        )


def save(shards: ShardMap, move: Move, conn: Connection | None = None, on: str = "") -> None:
    """Write the move's row on its source and target (``conn``: on shard ``on`` in that
    transaction, and on the other one apart)."""
    move.updated = utcnow()
    for name in dict.fromkeys((move.source, move.target)):
        if conn is not None and name == on:
            _upsert(conn, move)
            continue
        with shards[shards.positions_by_name[name]].begin() as own:
            _upsert(own, move)


def _upsert(conn: Connection, move: Move) -> None:
    values = move.row()
    stmt = moves.update().where(moves.c.id == move.id)
    if conn.execute(stmt, values).rowcount == 0:
        conn.execute(moves.insert(), values)


def listed(shards: ShardMap) -> list[Move]:
    """Every move any answering shard holds, the furthest copy of each, oldest first."""
    found: dict[str, Move] = {}
    for shard in shards:
        try:
            with shard.read() as conn:
                rows = list(conn.execute(sa.select(moves)))
        except ShardUnavailable:
            continue
        for each in _moves(rows):
            held = found.get(each.id)
            if held is None or _order(each) > _order(held):
                found[each.id] = each
    return sorted(found.values(), key=lambda m: m.started)


def _order(move: Move) -> tuple[int, int, dt.datetime]:
    return PHASES.index(move.phase), move.copied, move.updated


def _moves(rows: Iterable[Any]) -> list[Move]:
    return [
        Move(
            row.id,
            row.shard_group,
            parse(row.buckets),
            row.source,
            row.target,
            row.phase,
            None if row.position is None else bytes(row.position),
            row.copied,
            row.total,
            row.watermark,
            row.frozen_ms,
            row.started,
            row.updated,
        )
        for row in rows
    ]
