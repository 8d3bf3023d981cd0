"""IndexWriter: the one place that computes entities' index rows and writes them.

The sync write path, the indexer worker, the backfill and the cleaner's repair all call
:meth:`IndexWriter.apply_in`; they differ only in how they pick the entities and the transaction.

Version safety and exactness come from locking, not from comparing versions after the fact: the
entities are read ``FOR UPDATE``, in id order, in the caller's transaction and stay locked until
their index rows are committed (rows on other shards commit first). So a writer cannot make a
newer version visible while an older one is being indexed, and two appliers of one entity (two
workers holding two of its change rows, a worker and a backfill) take turns: the second reads
the entity, and deletes the index rows, that the first committed, and never inserts beside
them. (Shared locks would not exclude each other: both would delete nothing and both insert.)
SQLite's single write lock gives the same order. Each index row is numbered within its entity,
and ``(entity_id, entity_row)`` is the table's primary key: a second copy of an entity's rows
fails loudly instead of doubling them. The ``version`` column records which version the rows
came from, for ``verify`` and for diagnosis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from . import dialect
from .index import Index, WrongType
from .tables import entities

if TYPE_CHECKING:
    from .shards import ShardMap
    from .store import Store

logger = logging.getLogger(__name__)

_select_state = sa.select(entities.c.id, entities.c.kind, entities.c.version, entities.c.body)

Lock = Literal["update", "share"] | None


@dataclasses.dataclass(frozen=True)
class State:
    """What an entity says now: its kind, version and body (None once deleted)."""

    kind: str
    version: int
    body: dict[str, Any] | None


@dataclasses.dataclass
class Outcome:
    """What one apply did: entities seen, index rows written, entities left out (wrong type)."""

    entities: int = 0
    rows: int = 0
    skipped: int = 0


class IndexWriter:
    """Computes and writes index rows for the store's indexes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.shards = store.shards
        self.registry = store.registry

    def apply_in(
        self,
        conn: Connection,
        entity_ids: Iterable[bytes],
        *,
        shard: int | None = None,
        kinds: Iterable[str] = (),
        indexes: list[Index] | None = None,
        states: dict[bytes, State] | None = None,
    ) -> Outcome:
        """Replace the index rows of these entities, which live on ``conn``'s shard.

        ``kinds`` adds kinds the entities had before (an id may change kind after a delete);
        ``indexes`` limits the work to those indexes (a backfill), else every live one.
        ``states`` are the entities as the caller has already read them on ``conn``, locked
        as :meth:`read` locks them, else they are read here.
        """
        ids = sorted(set(entity_ids))  # one lock order for every applier: no deadlock among them
        if shard is None:
            shard = self.shards.shard_for_id(ids[0]) if ids else 0
        if states is None:
            states = self.read(conn, ids)
        if indexes is None:
            wanted = set(kinds) | {s.kind for s in states.values()}
            indexes = self.registry.live(wanted, conn if shard == 0 else None)
        outcome = Outcome(entities=len(ids))
        with _Remote(self.shards) as remote:
            for index in indexes:
                self._replace(conn, shard, index, ids, states, outcome, remote)
        return outcome

    def read(self, conn: Connection, ids: list[bytes], lock: Lock = "update") -> dict[bytes, State]:
        """The entities' current states, locked until ``conn`` commits.

        ``"update"``, to write their index rows: exclusive, so that writers and other appliers
        wait for this transaction (the ``IN`` list is read, and locked, in id order).
        ``"share"``, to compare them with their rows (``verify``): writers and appliers wait,
        readers don't. None: no lock, for checks and tests. SQLite's one writer at a time
        needs none of them.
        """
        states: dict[bytes, State] = {}
        for part in dialect.batches(ids):  # IN lists of at most MAX_ROWS, still in id order
            if dialect.is_mysql(conn):
                sql = _read_sql(conn.dialect, len(part), lock)
                states.update(self.states(conn.exec_driver_sql(sql, tuple(part))))
            else:
                states.update(
                    self.states(conn.execute(_select_state.where(entities.c.id.in_(part))))
                )
        return states

    def states(self, rows: Iterable[Any]) -> dict[bytes, State]:
        """The states of rows of (id, kind, version, body), keyed by id.

        Every row is fetched before any body is decoded: a body that cannot be decoded must not
        leave the cursor open (on SQLite an unfinished statement pins its read snapshot, and
        the pooled connection would go on reading the past).
        """
        decode = self.store.codec.decode
        return {
            bytes(row[0]): State(row[1], row[2], None if row[3] is None else decode(row[3]))
            for row in list(rows)
        }

    def read_one(self, entity_id: bytes) -> State | None:
        """One entity's current state, without locking: for checks and tests."""
        with self.shards.for_id(entity_id).read() as conn:
            return self.read(conn, [entity_id], lock=None).get(entity_id)

    def rows_for(self, index: Index, entity_id: bytes, state: State | None) -> list[dict[str, Any]]:
        """The rows ``index`` should hold for this entity; raises WrongType to leave it out."""
        columns = [*index.fields, "entity_id", "version", "entity_row"]
        return [dict(zip(columns, row, strict=True)) for row in self._rows(index, entity_id, state)]

    def _rows(self, index: Index, entity_id: bytes, state: State | None) -> list[tuple[Any, ...]]:
        """rows_for's rows as tuples in the table's column order: fields, entity_id, version,
        entity_row (the row's number within its entity, the second half of the primary key)."""
        if state is None or state.body is None or state.kind != index.kind:
            return []
        version = state.version
        return [(*values, entity_id, version, n) for n, values in enumerate(index.rows(state.body))]

    def target(self, index: Index, row: dict[str, Any], home: int) -> int:
        """The shard an index row lives on: its shard_on value's, else its entity's."""
        return self._target(index, tuple(row[field] for field in index.fields), home)

    def _target(self, index: Index, row: tuple[Any, ...], home: int) -> int:
        """target() of a row as _rows() makes it: the fields' values in the index's order."""
        if index.shard_on is None:
            return home
        value = row[list(index.fields).index(index.shard_on)]
        return self.shards.shard_for_value(value, index.kind)  # in the kind's shard group

    def _replace(
        self,
        conn: Connection,
        shard: int,
        index: Index,
        ids: list[bytes],
        states: dict[bytes, State],
        outcome: Outcome,
        remote: _Remote,
    ) -> None:
        by_shard: dict[int, list[tuple[Any, ...]]] = {}
        for entity_id in ids:
            for row in self._safe_rows(index, entity_id, states.get(entity_id), outcome):
                by_shard.setdefault(self._target(index, row, shard), []).append(row)
        # Rows of a shard_on index may sit on any shard (the value may have moved): clear all.
        targets = self.shards.positions(index.kind) if index.shard_on else [shard]
        table = self.registry.table(index)
        for target in targets:
            on = conn if target == shard else remote.begin(target)
            _delete(on, table, ids)
            if by_shard.get(target):
                _insert(on, table, by_shard[target])
                outcome.rows += len(by_shard[target])

    def _safe_rows(
        self, index: Index, entity_id: bytes, state: State | None, outcome: Outcome
    ) -> list[tuple[Any, ...]]:
        try:
            return self._rows(index, entity_id, state)
        except WrongType as exc:
            outcome.skipped += 1
            logger.warning(
                "entity %s left out of index %s: %s", uuid.UUID(bytes=entity_id), index.name, exc
            )
            return []


# A backfill or a busy worker writes thousands of index rows a second. Through Core, binding a
# dict per row and expanding a 1000-id IN list cost as much Python as computing the rows; so on
# MySQL the locked read, the delete and the insert are compiled once (names still quoted by the
# dialect) and the driver gets plain tuples. Other dialects keep Core, whose type processing
# they need (SQLite stores datetimes as text); on MySQL the only processors are bytes() on
# binary columns and int() on booleans, which mysqlclient's own conversion gives alike.


def _delete(conn: Connection, table: sa.Table, ids: list[bytes]) -> None:
    """Delete the index rows of these entities."""
    for part in dialect.batches(ids):  # IN lists of at most MAX_ROWS
        if dialect.is_mysql(conn):
            conn.exec_driver_sql(_delete_sql(table, conn.dialect, len(part)), tuple(part))
        else:
            conn.execute(table.delete().where(table.c.entity_id.in_(part)))


def _insert(conn: Connection, table: sa.Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert index rows, each a tuple in the table's column order, MAX_ROWS a statement
    (a batch of 1000 entities with a list field makes several thousand rows)."""
    columns = [column.name for column in table.columns]
    for part in dialect.batches(rows):
        if dialect.is_mysql(conn):
            conn.exec_driver_sql(_insert_sql(table, conn.dialect), list(part))
        else:
            conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in part])


@functools.lru_cache(maxsize=256)
def _insert_sql(table: sa.Table, dialect_: Dialect) -> str:
    columns = [column.name for column in table.columns]
    compiled = table.insert().compile(dialect=dialect_, column_keys=columns)
    assert list(compiled.positiontup or ()) == columns, "parameters out of column order"
    return str(compiled)


@functools.lru_cache(maxsize=256)
def _delete_sql(table: sa.Table, dialect_: Dialect, count: int) -> str:
    ids: list[sa.BindParameter[bytes]] = [sa.bindparam(f"id{n}") for n in range(count)]
    return str(table.delete().where(table.c.entity_id.in_(ids)).compile(dialect=dialect_))


@functools.lru_cache(maxsize=256)
def _read_sql(dialect_: Dialect, count: int, lock: Lock) -> str:
    ids: list[sa.BindParameter[bytes]] = [sa.bindparam(f"id{n}") for n in range(count)]
    stmt = _select_state.where(entities.c.id.in_(ids))
    if lock is not None:
        stmt = stmt.with_for_update(read=lock == "share")
    return str(stmt.compile(dialect=dialect_))


class _Remote(contextlib.ExitStack):
    """Transactions on other shards, opened on first use and committed before the caller's."""

    def __init__(self, shards: ShardMap) -> None:
        super().__init__()
        self.shards = shards
        self.conns: dict[int, Connection] = {}

    def begin(self, shard: int) -> Connection:
        if shard not in self.conns:
            self.conns[shard] = self.enter_context(self.shards[shard].begin())
        return self.conns[shard]
