"""Copier: the rows a move copies, catches up, re-derives and deletes.

What moves with buckets B of group G from shard S to shard T:

- the entities whose ids are in B (tombstones too: they keep versions counting), read from S by
  id ranges (``plan.id_ranges``) in keyset batches and written to T only where T holds an older
  version or none (so a batch copied twice, or a resumed copy, changes nothing);
- the rows of home-placed indexes (no ``shard_on``) of those entities, copied with each batch;
- the rows of ``shard_on`` indexes of G's kinds whose value's bucket is in B, wherever their
  entity lives: S's index tables are scanned (the value's bucket is a hash, no range), in
  keyset batches of the ``(entity_id, entity_row)`` key.

The indexer deletes change rows as it drains them, so a move cannot tail the change log.
Instead it catches up by ``entities.updated`` (indexed): a pass reads the ids and versions of
rows updated since the last pass's watermark less a margin (a write stamps ``updated`` before
it commits; the margin covers that delay and the writers' clock skew), keeps those in B, and
copies the ones whose version T lacks. The last pass runs while S refuses B's writes (the
fence), so nothing can slip past it.

Index rows are derived data that the indexer rewrites per entity by the map it holds, so copies
can go stale while processes follow the flip. After the flip and a grace period (every process
re-reads the map's version at least every ``shards.REFRESH`` seconds), :meth:`reconcile`
rewrites, through ``IndexWriter.apply_in`` (the one writer of index rows, with its locks),
the rows of every moved entity and of every entity that had a ``shard_on`` row in B on S.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import dialect
from ..errors import ShardBusy
from ..index import Index
from ..shard import Shard
from ..shards import value_bucket
from ..store import Store
from ..tables import entities, entity_changes
from .plan import holds, id_ranges
from .record import Move

logger = logging.getLogger(__name__)

_ENTITY = (entities.c.id, entities.c.kind, entities.c.version, entities.c.updated, entities.c.body)
_ATTEMPTS = 5


class Copier:
    """The data work of one move, batch by batch; the Mover decides when."""

    def __init__(self, store: Store, move: Move, batch_size: int) -> None:
        self.store = store
        self.shards = store.shards
        self.move = move
        self.batch = batch_size
        self.number = self.shards.maps()[move.group].number
        self.buckets = set(move.buckets)
        self.ranges = id_ranges(self.number, move.buckets)
        self.source = self.shards[self.shards.positions_by_name[move.source]]
        self.target = self.shards[self.shards.positions_by_name[move.target]]

    def holds(self, id_bytes: bytes) -> bool:
        return holds(self.number, self.buckets, bytes(id_bytes))

    # -- copying ---------------------------------------------------------------------------

    def count(self) -> int:
        """About how many entities the move copies (the ranges also hold other groups' ids)."""
        total = 0
        with self.source.read() as conn:
            for lo, hi in self.ranges:
                stmt = sa.select(sa.func.count()).where(entities.c.id.between(lo, hi))
                total += conn.execute(stmt).scalar_one()
        return total

    def watermark(self) -> dt.datetime | None:
        with self.source.read() as conn:
            return conn.execute(sa.select(sa.func.max(entities.c.updated))).scalar()

    def entity_batches(self) -> Iterator[int]:
        """Copy the next batch of entities (and their home index rows) from ``position`` on;
        yields how many were copied, once per batch, with ``move.position`` advanced."""
        for rows in _keyset(self.source, self.ranges, self.move.position, self.batch):
            mine = [row for row in rows if self.holds(row.id)]
            if mine:
                with self.target.begin() as conn:
                    _upsert(conn, mine)
                self._copy_home_rows([bytes(row.id) for row in mine])
            self.move.position = bytes(rows[-1].id)
            yield len(mine)

    def _copy_home_rows(self, ids: list[bytes]) -> None:
        for index in self._indexes(home=True):
            table = self.store.registry.table(index)
            with self.source.read() as conn:
                rows = [dict(r._mapping) for r in conn.execute(_rows_of(table, ids))]
            with self.target.begin() as conn:
                conn.execute(table.delete().where(table.c.entity_id.in_(ids)))
                if rows:
                    conn.execute(table.insert(), rows)

    def copy_value_rows(self) -> int:
        """Copy the rows of shard_on indexes whose value's bucket moves; how many."""
        copied = 0
        for index, rows in self._value_rows(self.source):
            table = self.store.registry.table(index)
            keys = [(row["entity_id"], row["entity_row"]) for row in rows]
            with self.target.begin() as conn:
                conn.execute(table.delete().where(_pk(table).in_(keys)))
                conn.execute(table.insert(), rows)
            copied += len(rows)
        return copied

    # -- catching up -----------------------------------------------------------------------

    def catch_up(self, margin: float) -> int:
        """One pass: copy what changed since the watermark; the entities copied."""
        assert self.move.watermark is not None
        since = self.move.watermark - dt.timedelta(seconds=margin)
        top = self.watermark()
        with self.source.read() as conn:
            stmt = sa.select(entities.c.id, entities.c.version).where(entities.c.updated >= since)
            changed = {bytes(i): v for i, v in conn.execute(stmt) if self.holds(i)}
        behind = self._behind(changed)
        for part in dialect.batches(behind, self.batch):
            with self.source.read() as conn:
                rows = conn.execute(sa.select(*_ENTITY).where(entities.c.id.in_(part))).all()
            with self.target.begin() as conn:
                _upsert(conn, rows)
        if top is not None:
            self.move.watermark = top
        return len(behind)

    def _behind(self, changed: dict[bytes, int]) -> list[bytes]:
        """The ids among ``changed`` (id -> version on S) that T holds at an older version."""
        held: dict[bytes, int] = {}
        for part in dialect.batches(sorted(changed), 1000):
            with self.target.read() as conn:
                stmt = sa.select(entities.c.id, entities.c.version).where(entities.c.id.in_(part))
                held.update((bytes(i), v) for i, v in conn.execute(stmt))
        return [i for i, v in changed.items() if held.get(i, 0) < v]

    def move_changes(self) -> int:
        """Hand the change rows of moved entities from S's log to T's (after the flip, when S
        writes no more of them): T's indexer applies them by the new map; S's never will."""
        moved, after = 0, 0
        while True:
            with self.source.begin() as src:
                stmt = sa.select(entity_changes).where(entity_changes.c.seq > after)
                stmt = stmt.order_by(entity_changes.c.seq).limit(self.batch)
                # FOR UPDATE, not SKIP LOCKED: a worker applying one of them finishes first
                rows = src.execute(dialect.for_update(stmt, src)).all()
                if not rows:
                    return moved
                after = rows[-1].seq
                mine = [row for row in rows if self.holds(row.entity_id)]
                if mine:
                    with self.target.begin() as tgt:
                        tgt.execute(entity_changes.insert(), [_change(r) for r in mine])
                    seqs = [row.seq for row in mine]
                    src.execute(entity_changes.delete().where(entity_changes.c.seq.in_(seqs)))
            moved += len(mine)

    # -- after the flip --------------------------------------------------------------------

    def reconcile(self) -> int:
        """Rewrite the index rows of the moved entities, and of the entities that have a
        shard_on row in the moved buckets on S or T, by the new map; the entities rewritten."""
        done = 0
        target = self.shards.positions_by_name[self.move.target]
        for rows in _keyset(self.target, self.ranges, None, self.batch, columns=(entities.c.id,)):
            ids = [bytes(row.id) for row in rows if self.holds(row.id)]
            done += self._reapply(target, ids)
        # Both sides: a copy on T of a row whose entity then changed its value (indexed by the
        # old map, which did not clear T) is found only on T.
        for shard in (self.source, self.target):
            for _index, rows in self._value_rows(shard):
                ids = sorted({bytes(row["entity_id"]) for row in rows})
                for home, group in self.shards.group_by_id(ids, key=bytes).items():
                    done += self._reapply(home, group)
        return done

    def _reapply(self, home: int, ids: list[bytes]) -> int:
        if not ids:
            return 0
        for attempt in range(_ATTEMPTS):  # a deadlock beside the indexer: run it again
            try:
                with self.shards[home].begin() as conn:
                    self.store.index_writer.apply_in(conn, ids, shard=home)
                return len(ids)
            except ShardBusy:
                if attempt + 1 == _ATTEMPTS:
                    raise
        return 0

    def delete_copies(self, shard: Shard) -> int:
        """Delete the moved entities, their home index rows and the moved shard_on rows on
        ``shard`` (the source after the flip; the target when a move is rolled back)."""
        deleted = 0
        for index, rows in self._value_rows(shard):
            table = self.store.registry.table(index)
            keys = [(row["entity_id"], row["entity_row"]) for row in rows]
            with shard.begin() as conn:
                conn.execute(table.delete().where(_pk(table).in_(keys)))
        for found in _keyset(shard, self.ranges, None, self.batch, columns=(entities.c.id,)):
            ids = [bytes(row.id) for row in found if self.holds(row.id)]
            if not ids:
                continue
            with shard.begin() as conn:
                for index in self._indexes(home=True):
                    table = self.store.registry.table(index)
                    conn.execute(table.delete().where(table.c.entity_id.in_(ids)))
                conn.execute(entities.delete().where(entities.c.id.in_(ids)))
            deleted += len(ids)
        return deleted

    # -- index rows ------------------------------------------------------------------------

    def _indexes(self, *, home: bool) -> list[Index]:
        """The non-retired indexes of the group's kinds, home-placed or shard_on ones."""
        found = []
        for entry in self.store.registry.entries():
            index = entry.index
            if entry.state == "retired" or (index.shard_on is None) != home:
                continue
            if self.shards.kind(index.kind).group == self.move.group:
                found.append(index)
        return found

    def _value_rows(self, shard: Shard) -> Iterator[tuple[Index, list[dict[str, Any]]]]:
        """Batches of the rows on ``shard`` of shard_on indexes whose value's bucket moves."""
        for index in self._indexes(home=False):
            table = self.store.registry.table(index)
            assert index.shard_on is not None
            column = index.shard_on
            for rows in _index_keyset(shard, table, self.batch):
                mine = [row for row in rows if value_bucket(row[column]) in self.buckets]
                if mine:
                    yield index, mine


def _keyset(
    shard: Shard,
    ranges: list[tuple[bytes, bytes]],
    after: bytes | None,
    batch: int,
    columns: tuple[Any, ...] = _ENTITY,
) -> Iterator[list[Any]]:
    """Batches of entity rows in the id ranges, in id order, after ``after``."""
    for lo, hi in ranges:
        if after is not None and after >= hi:
            continue
        position = after if after is not None and after >= lo else None
        while True:
            stmt = sa.select(*columns).where(entities.c.id.between(lo, hi))
            if position is not None:
                stmt = stmt.where(entities.c.id > position)
            with shard.read() as conn:
                rows = conn.execute(stmt.order_by(entities.c.id).limit(batch)).all()
            if not rows:
                break
            yield list(rows)
            position = bytes(rows[-1].id)


def _index_keyset(shard: Shard, table: sa.Table, batch: int) -> Iterator[list[dict[str, Any]]]:
    """Every row of an index table on ``shard``, in batches, in (entity_id, entity_row) order.

    An entity's rows never straddle two batches: a batch that ends inside an entity drops its
    rows and the next starts at it (one holding more rows than a batch is read whole).
    """
    after: bytes | None = None
    while True:
        stmt = sa.select(table)
        if after is not None:
            stmt = stmt.where(table.c.entity_id > after)
        stmt = stmt.order_by(table.c.entity_id, table.c.entity_row).limit(batch)
        with shard.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
            if len(rows) == batch:
                last = rows[-1]["entity_id"]
                rows = [r for r in rows if r["entity_id"] != last]
                if not rows:  # one entity fills the batch: take it whole
                    whole = sa.select(table).where(table.c.entity_id == last)
                    rows = [dict(r._mapping) for r in conn.execute(whole)]
        if not rows:
            return
        yield rows
        after = bytes(rows[-1]["entity_id"])


def _rows_of(table: sa.Table, ids: list[bytes]) -> sa.Select[Any]:
    return sa.select(table).where(table.c.entity_id.in_(ids))


def _pk(table: sa.Table) -> Any:
    return sa.tuple_(table.c.entity_id, table.c.entity_row)


def _upsert(conn: Connection, rows: Sequence[Any]) -> None:
    """Write entity rows where this shard holds an older version of them, or none."""
    ids = [bytes(row.id) for row in rows]
    stmt = sa.select(entities.c.id, entities.c.version).where(entities.c.id.in_(ids))
    held = {bytes(i): v for i, v in conn.execute(stmt)}
    fresh = [_entity(row) for row in rows if bytes(row.id) not in held]
    newer = [_entity(row) for row in rows if held.get(bytes(row.id), row.version) < row.version]
    if fresh:
        conn.execute(entities.insert(), fresh)
    for values in newer:
        conn.execute(entities.update().where(entities.c.id == values["id"]), values)


def _entity(row: Any) -> dict[str, Any]:
    return {
        "id": bytes(row.id),
        "kind": row.kind,
        "version": row.version,
        "updated": row.updated,
        "body": row.body,
    }


def _change(row: Any) -> dict[str, Any]:
    return {
        "entity_id": bytes(row.entity_id),
        "kind": row.kind,
        "version": row.version,
        "created": row.created,
    }
