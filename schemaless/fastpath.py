"""FastPath: the store's hot reads and writes on MySQL, run on the DBAPI cursor.

The hot paths (get, get_many, put of a new entity, put_many, a compare-and-set put of a new
version, and the pages of an indexed query) are measured against raw mysqlclient
(``bench/store.py``, ``bench/indexes.py``). Through SQLAlchemy's Connection a get took about
three times the raw time, mostly in round trips rather than in Python: the pool's pre-ping
before every checkout, and the rollback that ends every read. So on MySQL these calls run
here, in this one place, instead:

- Connections are checked out of the engine's own pool (pinged there, counted against its
  limits) and kept between calls, one stack for reads and one for writes, so that the next call
  neither pings nor resets. Kept read connections are in autocommit mode: a read leaves no
  transaction open, and none has to be rolled back. At most half the pool is kept: a connection
  beyond that goes back to the pool in the state the pool handed it out, as does one kept for
  a minute (so the pool's recycling reaches it), and one of the other kind goes back when the
  pool has none left to give. Kept ones are closed when the engine is disposed
  (``Store.close()``).
- A kept connection that died meanwhile (a server restart, ``wait_timeout``) fails its first
  statement with a disconnect error: what the pool's pre-ping would have caught. Every kept
  connection is then dropped and the call runs once more on a fresh, pinged one. A write is
  only retried when its first statement failed, so nothing of it can have been committed.
  Only a failure that came at once is retried so: one that came after a read timeout means a
  silent server, and a second try would wait for it a second time. The shard's breaker
  (``shard.Breaker``) is asked first and told of failures, as for the Core path.
- Statements are compiled once from the Table objects (so names stay quoted by the dialect),
  and driver errors are handed to the shard layer's mapping (``Shard.error``), which raises
  ours; a connection lost on the COMMIT of a write is an outcome we cannot know.

SQLite, and engines whose pool keeps fewer than two connections (``NullPool``, ``pool_size=1``),
stay on the Core path.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

from . import dialect, fence, inline
from .errors import Conflict, ShardUnavailable
from .tables import entities, entity_changes

if TYPE_CHECKING:
    from .shard import Breaker

Row = tuple[Any, ...]
Step = tuple[str, Any, bool]  # (statement, parameters, executemany?)
# Run on the cursor after a write's statements: the error to raise instead of COMMIT, or None.
Check = Callable[[Any], Exception | None] | None

# A kept connection goes back to the pool after this long, so that the pool's own care
# (pool_recycle, replacing connections after a failover) reaches kept connections too.
KEEP_SECONDS = 60.0
_KEPT_UNTIL = "schemaless_kept_until"  # in the pooled connection's info dict

_ENTITY_COLUMNS = ["id", "kind", "version", "updated", "body"]
_CHANGE_COLUMNS = ["entity_id", "kind", "version", "created"]


class _Stale(Exception):
    """A kept connection died while it waited: run the call again on a fresh one."""


class FastPath:
    """Kept DBAPI connections of one engine, and the compiled statements of the hot paths.

    ``checkout`` gives a pooled, pinged connection of the engine, raising as the store wants an
    unreachable shard reported; ``error(exc, committing)`` turns a SQLAlchemy error into the
    one to raise; ``breaker`` fails calls at once while the shard is known silent. Make one
    with :meth:`serving`.
    """

    def __init__(
        self,
        engine: Engine,
        checkout: Callable[[Engine], Any],
        error: Callable[[Exception, bool], Exception],
        breaker: Breaker,
    ) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self.checkout = checkout
        self.error = error
        self.breaker = breaker
        # At most half the pool is kept, so the Core path always finds connections to use.
        self.keep = engine.pool.size() // 2  # type: ignore[attr-defined]
        self._error = engine.dialect.loaded_dbapi.Error
        self._kept: dict[bool, deque[Any]] = {True: deque(), False: deque()}
        self._prepare()
        # Called with the DBAPI connection after each commit when the shard has replicas
        # (replica.py reads the write's GTID there, where it was written); None costs nothing.
        self.committed: Callable[[Any], None] | None = None
        sa.event.listen(engine, "engine_disposed", self._on_dispose)

    def _prepare(self) -> None:
        """Compile the statements of the hot paths once, for this dialect."""
        self._insert_entities = _compile(entities.insert(), self.dialect, _ENTITY_COLUMNS)
        self._insert_changes = _compile(entity_changes.insert(), self.dialect, _CHANGE_COLUMNS)
        self._insert_fenced = fence.fenced_insert_sql(self.dialect)
        self._select_one = _select(self.dialect, 1)
        self._update_at = _update_at(self.dialect)
        self._insert_change_if_updated = _insert_if_updated(self.dialect)

    @classmethod
    def serving(
        cls,
        engine: Engine,
        checkout: Callable[[Engine], Any],
        error: Callable[[Exception, bool], Exception],
        breaker: Breaker,
    ) -> FastPath | None:
        """The engine's fast path; None where the Core path must serve (SQLite, NullPool)."""
        eligible = (
            dialect.is_mysql(engine)
            and engine.dialect.paramstyle == "format"
            and isinstance(engine.pool, sa.pool.QueuePool)
            and engine.pool.size() >= 2
        )
        return cls(engine, checkout, error, breaker) if eligible else None

    def fetch(self, id_list: list[bytes]) -> Sequence[Row]:
        """(id, kind, version, body) of the live entities among ``id_list``.

        More than ``dialect.MAX_ROWS`` ids are read by one statement per slice, in one call.
        """
        count = len(id_list)
        if count == 1:
            return self._run(True, ((self._select_one, id_list, False),))
        if count <= dialect.MAX_ROWS:
            return self._run(True, ((_select(self.dialect, count), id_list, False),))
        rows: list[Row] = []
        for part in dialect.batches(id_list):
            rows += self._run(True, ((_select(self.dialect, len(part)), part, False),))
        return rows

    def select(self, statement: str, params: Sequence[Any]) -> Sequence[Row]:
        """The rows of a read-only statement compiled for this dialect: a query's pages."""
        return self._run(True, ((statement, params, False),))

    def insert(self, rows: Sequence[Row], changes: Sequence[Row], fenced: bool = True) -> None:
        """Insert entity rows and their change rows, in one transaction, unless the shard's
        fence refuses one of their buckets (fence.py): then nothing is written, and
        BucketMoved is raised. One row's fence check rides in its change row's INSERT.
        ``fenced=False`` (no move was ever prepared: see ShardMap.fenced) skips the check."""
        steps: tuple[Step, ...]
        if len(rows) == 1:  # execute, not executemany: less Python per row
            entity_id = rows[0][0]
            if not fenced:
                steps = (
                    (self._insert_entities, rows[0], False),
                    (self._insert_changes, changes[0], False),
                )
                self._run(False, steps, batchable=True)
                return
            steps = (
                (self._insert_entities, rows[0], False),
                (self._insert_fenced, (*changes[0], *fence.position(entity_id)), False),
            )
            self._run(False, steps, functools.partial(self._inserted_one, entity_id))
            return
        steps = tuple(  # one transaction, statements of at most MAX_ROWS rows each
            _many(statement, part)
            for statement, many in ((self._insert_entities, rows), (self._insert_changes, changes))
            for part in dialect.batches(many)
        )
        if not fenced:
            self._run(False, steps, batchable=not any(many for _, _, many in steps))
            return
        ids = [row[0] for row in rows]
        numbers = fence.numbers(ids)
        steps += ((fence.guard_sql(self.dialect, len(numbers)), numbers, False),)
        self._run(False, steps, functools.partial(self._unfenced, ids))

    def update(self, row: Row, expected: int, fenced: bool = True) -> None:
        """Write ``row`` (id, kind, version, updated, body) over the entity at version
        ``expected``, and its change row, in one transaction; Conflict, with nothing written,
        when the entity is not live at that version and kind. The compare-and-set is the
        UPDATE's own WHERE (its row lock is the one a SELECT ... FOR UPDATE would take), so
        the write costs the UPDATE and the change-row INSERT, no read. Unfenced, the INSERT
        is conditional on the UPDATE's row count (``ROW_COUNT()``), so the two statements need
        no answer in between."""
        entity_id, kind, version, updated, body = row
        steps: tuple[Step, ...] = (
            (self._update_at, (version, updated, body, entity_id, kind, expected), False),
        )
        change: Row = (entity_id, kind, version, updated)
        if not fenced:
            steps += ((self._insert_change_if_updated, change, False),)
            conflict = functools.partial(self._conflict, entity_id, expected)
            self._run(False, steps, conflict, batchable=True)
            return
        change = (*change, *fence.position(entity_id))
        self._run(False, steps, functools.partial(self._updated_one, entity_id, expected, change))

    def _conflict(self, id_bytes: bytes, expected: int, cursor: Any) -> Exception | None:
        """Conflict when the last statement (the UPDATE, or the change row conditional on it)
        wrote no row: the UPDATE matched none."""
        if cursor.rowcount == 1:
            return None
        return Conflict(f"entity {uuid.UUID(bytes=id_bytes)} is not at version {expected}")

    def _updated_one(
        self, id_bytes: bytes, expected: int, change: Row, cursor: Any
    ) -> Exception | None:
        conflict = self._conflict(id_bytes, expected, cursor)  # the UPDATE's row count
        if conflict is not None:
            return conflict
        cursor.execute(self._insert_fenced, change)
        return self._inserted_one(id_bytes, cursor)

    def _inserted_one(self, id_bytes: bytes, cursor: Any) -> Exception | None:
        if cursor.rowcount == 1:
            return None
        cursor.execute(fence.guard_sql(self.dialect, 1), fence.numbers([id_bytes]))
        return fence.refused_among(dict(cursor.fetchall()), [id_bytes], self.breaker.shard)

    def _unfenced(self, ids: list[bytes], cursor: Any) -> Exception | None:
        return fence.refused_among(dict(cursor.fetchall()), ids, self.breaker.shard)

    def _run(
        self,
        readonly: bool,
        steps: tuple[Step, ...],
        check: Check = None,
        batchable: bool = False,  # steps and check may all be sent at once (CursorPath)
    ) -> Sequence[Row]:
        started = self.breaker.check()
        try:
            try:
                conn = self._kept[readonly].pop()
            except IndexError:
                return self._run_on(self._fresh(readonly), readonly, steps, False, check)
            try:
                return self._run_on(conn, readonly, steps, True, check)
            except _Stale:
                return self._run_on(self._fresh(readonly), readonly, steps, False, check)
        except ShardUnavailable as error:
            self.breaker.failed(error, started)
            raise

    def _run_on(
        self, conn: Any, readonly: bool, steps: tuple[Step, ...], kept: bool, check: Check = None
    ) -> Sequence[Row]:
        dbapi_conn = conn.dbapi_connection
        cursor = dbapi_conn.cursor()
        step = 0
        started = time.monotonic()
        refused = None
        try:
            for statement, params, many in steps:
                if many:
                    cursor.executemany(statement, params)
                else:
                    cursor.execute(statement, params)
                step += 1
            if readonly:
                rows: Sequence[Row] = cursor.fetchall()
            elif check is not None and (refused := check(cursor)) is not None:
                rows = ()
                dbapi_conn.rollback()  # the fence refused a bucket: nothing is written
            else:
                rows = ()
                dbapi_conn.commit()
                if self.committed is not None:
                    self.committed(dbapi_conn)
        except self._error as exc:
            stale = kept and time.monotonic() - started < self.breaker.slow
            raise self._failed(conn, readonly, steps, step, exc, stale) from exc
        # No cursor.close(): it frees nothing here, and on a dead connection it raises.
        self._give_back(conn, readonly)
        if refused is not None:
            raise refused
        return rows

    def _failed(
        self,
        conn: Any,
        readonly: bool,
        steps: tuple[Step, ...],
        step: int,
        exc: Any,  # the driver's Error
        stale: bool,
    ) -> Exception:
        """Clean up after a driver error; return what to raise (_Stale asks for a retry).

        ``stale``: the connection was kept, and failed at once (so it was dead already).
        """
        lost = self.dialect.is_disconnect(exc, conn.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
            self._drop_kept()
            if stale and step == 0:
                return _Stale()
        elif readonly or _rolled_back(conn):
            self._give_back(conn, readonly)
        statement, params, many = steps[min(step, len(steps) - 1)]  # COMMIT: name the last
        error = sa.exc.DBAPIError.instance(
            statement,
            params,
            exc,
            self._error,
            connection_invalidated=lost,
            dialect=self.dialect,
            ismulti=many,
        )
        return self.error(error, not readonly and step == len(steps))

    def _fresh(self, readonly: bool) -> Any:
        other = self._kept[not readonly]
        if other and self.engine.pool.checkedin() == 0:  # type: ignore[attr-defined]
            # The pool may be down to what is kept here: hand one back rather than wait for it.
            with contextlib.suppress(IndexError):  # another thread took it meanwhile
                self._hand_back(other.pop(), not readonly)
        conn = self.checkout(self.engine)
        conn.info[_KEPT_UNTIL] = time.monotonic() + KEEP_SECONDS
        if readonly:
            try:
                conn.dbapi_connection.autocommit(True)
            except self._error as exc:
                conn.invalidate(exc)
                error = sa.exc.DBAPIError.instance(
                    None, None, exc, self._error, connection_invalidated=True, dialect=self.dialect
                )
                raise self.error(error, False) from exc
        return conn

    def _hand_back(self, conn: Any, readonly: bool) -> None:
        """Give a kept connection back to the pool, before checking out one of the other kind.

        The pool resets it (a rollback, a round trip) and only logs a failure; one that took
        half a timeout means a silent server, and the checkout would wait for it again.
        """
        started = time.monotonic()
        _release(conn, readonly)
        if time.monotonic() - started >= self.breaker.slow:
            shard = self.breaker.shard
            raise ShardUnavailable(
                f"shard {shard} is unavailable: it did not answer the reset of a connection",
                shard=shard,
            )

    def _give_back(self, conn: Any, readonly: bool) -> None:
        crowded = len(self._kept[True]) + len(self._kept[False]) >= self.keep
        if crowded or time.monotonic() > conn.info[_KEPT_UNTIL]:
            _release(conn, readonly)
        else:
            self._kept[readonly].append(conn)

    def _drop_kept(self) -> None:
        """Close every kept connection: the server may have dropped them, or the pool is gone."""
        for kept in self._kept.values():
            while kept:
                try:
                    conn = kept.pop()
                except IndexError:  # another thread took the last one meanwhile
                    break
                conn.invalidate()  # closes it at once, with no round trip to a dead server

    def _on_dispose(self, _engine: Engine) -> None:
        self._drop_kept()


def _release(conn: Any, readonly: bool) -> None:
    """Hand a kept connection back to the pool as the pool gave it: out of autocommit."""
    try:
        if readonly:
            conn.dbapi_connection.autocommit(False)
        conn.close()
    except Exception as exc:  # it is dead: the pool replaces it
        conn.invalidate(exc)


def _rolled_back(conn: Any) -> bool:
    """Roll back after a failed write; False (and the connection dropped) when that fails."""
    try:
        conn.dbapi_connection.rollback()
        return True
    except Exception as exc:
        conn.invalidate(exc)
        return False


def _many(statement: str, rows: Sequence[Row]) -> Step:
    """The step inserting ``rows``: one statement with their values written in where
    :func:`inline.inserting` can, else the driver's executemany."""
    rendered = inline.inserting(statement, rows)
    return (statement, rows, True) if rendered is None else (rendered, None, False)


def _compile(stmt: sa.Insert, dialect_: Dialect, columns: list[str]) -> str:
    compiled = stmt.compile(dialect=dialect_, column_keys=columns)
    assert list(compiled.positiontup or ()) == columns, "parameters out of column order"
    return str(compiled)


@functools.lru_cache(maxsize=16)
def _update_at(dialect_: Dialect) -> str:
    """UPDATE of a live entity's version, updated and body, where it is of a kind and at a
    version: parameters version, updated, body, id, kind, expected version."""
    stmt = (
        entities.update()
        .where(
            entities.c.id == sa.bindparam("at_id"),
            entities.c.kind == sa.bindparam("at_kind"),
            entities.c.version == sa.bindparam("at_version"),
            entities.c.body.is_not(None),
        )
        .values(
            version=sa.bindparam("version"),
            updated=sa.bindparam("updated"),
            body=sa.bindparam("body"),
        )
    )
    compiled = stmt.compile(dialect=dialect_)
    order = ["version", "updated", "body", "at_id", "at_kind", "at_version"]
    assert list(compiled.positiontup or ()) == order, "parameters out of order"
    return str(compiled)


@functools.lru_cache(maxsize=16)
def _insert_if_updated(dialect_: Dialect) -> str:
    """INSERT of a change row (entity_id, kind, version, created) only when the statement
    before it changed one row: the UPDATE of a compare-and-set put."""
    values: list[sa.BindParameter[Any]] = [sa.bindparam(f"new_{c}") for c in _CHANGE_COLUMNS]
    changed_one = sa.func.row_count() == sa.literal_column("1")
    rows = sa.select(*values).where(changed_one)
    stmt = entity_changes.insert().from_select(_CHANGE_COLUMNS, rows)
    compiled = stmt.compile(dialect=dialect_)
    order = [f"new_{c}" for c in _CHANGE_COLUMNS]
    assert list(compiled.positiontup or ()) == order, "parameters out of order"
    return str(compiled)


@functools.lru_cache(maxsize=256)
def _select(dialect_: Dialect, count: int) -> str:
    """SELECT id, kind, version, body of ``count`` ids, live entities only."""
    ids: list[sa.BindParameter[Any]] = [sa.bindparam(f"id{n}") for n in range(count)]
    stmt = sa.select(entities.c.id, entities.c.kind, entities.c.version, entities.c.body).where(
        entities.c.id.in_(ids), entities.c.body.is_not(None)
    )
    return str(stmt.compile(dialect=dialect_))
