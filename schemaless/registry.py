"""Registry: which indexes exist, and where each is in its life (building -> ready -> retired).

Every shard holds a copy of the ``schemaless_indexes`` table, so each shard describes itself and
keeps its own backfill position; the first shard's copy is the one read for definitions and
states. Adding an index is a ``CREATE TABLE`` on every shard plus a registry row; the hot
``entities`` table is never altered.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .dialect import utcnow
from .errors import ConfigurationError, IndexRequired, ShardUnavailable
from .ids import check_name
from .index import Index
from .shards import ShardMap
from .tables import entities, index_table, indexes

logger = logging.getLogger(__name__)

BUILDING, READY, RETIRED = "building", "ready", "retired"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered index as the registry holds it on one shard."""

    index: Index
    state: str
    position: int = 0
    done: int = 0
    total: int = 0

    @property
    def is_ready(self) -> bool:
        return self.state == READY

    @property
    def is_live(self) -> bool:
        """Maintained by the indexer: building or ready."""
        return self.state in (BUILDING, READY)


class Registry:
    """Reads and changes the registry on every shard."""

    def __init__(self, shards: ShardMap) -> None:
        self.shards = shards
        self._tables: dict[str, sa.Table] = {}
        self._snapshot: tuple[float, list[Entry]] | None = None

    def table(self, index: Index) -> sa.Table:
        """The index's table object (cached per definition)."""
        key = index.definition()
        if key not in self._tables:
            self._tables[key] = index_table(index.name, index.fields, descending=index.descending)
        return self._tables[key]

    # -- reading -------------------------------------------------------------------------------

    def entries(self, shard: int | None = None, conn: Connection | None = None) -> list[Entry]:
        """Every registered index, with its state and a shard's backfill progress.

        Every shard holds the registry, so without a shard named any healthy one answers:
        one shard down stops no read of the others.
        """
        stmt = sa.select(indexes).order_by(indexes.c.name)
        if conn is not None:
            return [_entry(row) for row in conn.execute(stmt)]
        order = range(len(self.shards)) if shard is None else [shard]
        for position, number in enumerate(order):
            try:
                with self.shards[number].read() as own:
                    return [_entry(row) for row in own.execute(stmt)]
            except ShardUnavailable:
                if position + 1 == len(order):
                    raise
                logger.warning("registry: shard %s unavailable, reading the next", number)
        raise AssertionError("unreachable")

    def snapshot(self, max_age: float) -> list[Entry]:
        """The entries as read at most ``max_age`` seconds ago: planning needs no fresh read."""
        if self._snapshot is None or time.monotonic() - self._snapshot[0] > max_age:
            self._snapshot = (time.monotonic(), self.entries())
        return self._snapshot[1]

    def get(self, name: str, shard: int | None = None) -> Entry:
        for entry in self.entries(shard):
            if entry.index.name == name:
                return entry
        raise IndexRequired(f"no index named {name!r}")

    def live(self, kinds: set[str], conn: Connection | None = None) -> list[Index]:
        """Indexes the indexer maintains for these kinds (building or ready)."""
        return [e.index for e in self.entries(conn=conn) if e.is_live and e.index.kind in kinds]

    # -- changing ------------------------------------------------------------------------------

    def add(self, index: Index) -> str:
        """Create the table and register the index; returns its state.

        Adding the same definition again changes nothing but what an earlier add cut short by
        an outage left undone (a shard without the table or its registry row); another
        definition under a registered name raises ConfigurationError: definitions are immutable.
        """
        self._snapshot = None
        entry = {e.index.name: e for e in self.entries()}.get(index.name)
        if entry is not None:
            self._same(entry, index)
        for shard in self.shards:
            with shard.ddl(f"add_index {index.name!r}") as conn:
                self.table(index).create(conn, checkfirst=True)
                if not self._registered(conn, index.name):
                    conn.execute(indexes.insert(), _row(index, entry.state if entry else BUILDING))
        if entry is not None:
            return entry.state
        if not self._has_entities(index.kind):
            self.set_state(index.name, READY)
            return READY
        logger.info("index %s is building: run `schemaless backfill %s`", index.name, index.name)
        return BUILDING

    def drop(self, name: str) -> None:
        """Retire the index (the indexer stops maintaining it), then drop its table."""
        entry = self.get(check_name(name, "index name"))
        self.set_state(name, RETIRED)
        for shard in self.shards:
            with shard.ddl(f"drop_index {name!r}") as conn:
                self.table(entry.index).drop(conn, checkfirst=True)
                conn.execute(indexes.delete().where(indexes.c.name == name))

    def set_state(self, name: str, state: str) -> None:
        self._snapshot = None
        for shard in self.shards:
            with shard.begin() as conn:
                conn.execute(
                    indexes.update().where(indexes.c.name == name),
                    {"state": state, "updated": utcnow()},
                )

    def save_progress(
        self,
        shard: int,
        name: str,
        position: int,
        done: int,
        total: int,
        conn: Connection | None = None,
    ) -> None:
        """Record one shard's backfill position, so a killed backfill resumes there.

        Given ``conn`` (a transaction on that shard), the position commits with the batch it
        describes, so a kill can never leave it ahead of, or behind, the rows written.
        """
        stmt = indexes.update().where(indexes.c.name == name)
        values = {"backfill_position": position, "backfill_done": done, "backfill_total": total}
        if conn is not None:
            conn.execute(stmt, values)
            return
        with self.shards[shard].begin() as own:
            own.execute(stmt, values)

    @staticmethod
    def _registered(conn: Connection, name: str) -> bool:
        stmt = sa.select(indexes.c.name).where(indexes.c.name == name)
        return conn.execute(stmt).first() is not None

    def _same(self, entry: Entry, index: Index) -> str:
        if entry.index != index:
            raise ConfigurationError(
                f"index {index.name!r} exists with another definition; drop it first"
            )
        return entry.state

    def _has_entities(self, kind: str) -> bool:
        stmt = sa.select(entities.c.added_id).where(
            entities.c.kind == kind, entities.c.body.is_not(None)
        )
        for shard in self.shards:
            with shard.read() as conn:
                if conn.execute(stmt.limit(1)).first() is not None:
                    return True
        return False


def _entry(row: Any) -> Entry:
    return Entry(
        Index.from_definition(row.definition),
        row.state,
        row.backfill_position,
        row.backfill_done,
        row.backfill_total,
    )


def _row(index: Index, state: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "name": index.name,
        "kind": index.kind,
        "definition": index.definition(),
        "state": state,
        "created": now,
        "updated": now,
    }
