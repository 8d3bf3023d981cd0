"""FastPath: the store's hot reads and writes on MySQL, run on the DBAPI cursor.

The hot paths (get, get_many, put of a new entity, put_many) are measured against raw
mysqlclient (``bench/store.py``). Through SQLAlchemy's Connection they cost about three times
the raw time, mostly in round trips rather than in Python: the pool's pre-ping before every
checkout, and the rollback that ends every read and resets every connection on its way back to
the pool. So on MySQL these four calls run here, in this one place, instead:

- Connections are checked out of the engine's own pool (pinged there, counted against its
  limits) and kept between calls, one stack for reads and one for writes, so that the next call
  neither pings nor resets. Kept read connections are in autocommit mode: a read leaves no
  transaction open, and no rollback is needed to end one. A connection goes back to the pool, in
  the state the pool handed it out, once more are kept than the pool's size allows, and when
  the engine is disposed.
- A kept connection that died meanwhile (a server restart, ``wait_timeout``) fails its first
  statement with a disconnect error: what the pool's pre-ping would have caught. Every kept
  connection is then dropped and the call runs once more on a fresh, pinged one. A write is
  only retried when its first statement failed, so nothing of it can have been committed.
- Statements are compiled once from the Table objects (so names stay quoted by the dialect),
  and driver errors are re-raised as SQLAlchemy's, as the Core path raises them.

SQLite, and engines whose pool keeps no connections (``NullPool``), stay on the Core path.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

from . import dialect
from .tables import entities, entity_changes

Row = tuple[Any, ...]
Step = tuple[str, Any, bool]  # (statement, parameters, executemany?)

_ENTITY_COLUMNS = ["id", "kind", "version", "updated", "body"]
_CHANGE_COLUMNS = ["entity_id", "kind", "version", "created"]

_paths: weakref.WeakKeyDictionary[Engine, FastPath | None] = weakref.WeakKeyDictionary()
_paths_lock = threading.Lock()


class _Stale(Exception):
    """A kept connection died while it waited: run the call again on a fresh one."""


class FastPath:
    """Kept DBAPI connections of one engine, and the compiled statements of the hot paths.

    ``checkout`` gives a pooled, pinged connection of the engine it is passed (raising as the
    store wants an unreachable shard reported). Get one per engine with :meth:`of`.
    """

    def __init__(self, engine: Engine, checkout: Callable[[Engine], Any]) -> None:
        # No reference to the engine itself: the cache in `of` must not keep it alive.
        self.dialect: Dialect = engine.dialect
        self.checkout = checkout
        self.keep = max(1, engine.pool.size() // 2)  # type: ignore[attr-defined]
        self._kept: dict[bool, deque[Any]] = {True: deque(), False: deque()}
        self._insert_entities = _compile(entities.insert(), self.dialect, _ENTITY_COLUMNS)
        self._insert_changes = _compile(entity_changes.insert(), self.dialect, _CHANGE_COLUMNS)
        sa.event.listen(engine, "engine_disposed", self._on_dispose)

    @classmethod
    def of(cls, engine: Engine, checkout: Callable[[Engine], Any]) -> FastPath | None:
        """The engine's fast path, made on first use; None where the Core path must serve."""
        try:
            return _paths[engine]
        except KeyError:
            pass
        with _paths_lock:
            if engine not in _paths:
                _paths[engine] = cls(engine, checkout) if _is_eligible(engine) else None
            return _paths[engine]

    def fetch(self, engine: Engine, id_list: list[bytes]) -> list[Row]:
        """(id, kind, version, body) of the live entities among ``id_list``."""
        return self._run(engine, True, [(_select(self.dialect, len(id_list)), id_list, False)])

    def insert(self, engine: Engine, rows: Sequence[Row], changes: Sequence[Row]) -> None:
        """Insert entity rows and their change rows, in one transaction."""
        many = len(rows) > 1
        self._run(
            engine,
            False,
            [
                (self._insert_entities, rows if many else rows[0], many),
                (self._insert_changes, changes if many else changes[0], many),
            ],
        )

    def _run(self, engine: Engine, readonly: bool, steps: list[Step]) -> list[Row]:
        try:
            conn = self._kept[readonly].pop()
        except IndexError:
            return self._run_on(self._fresh(engine, readonly), readonly, steps, kept=False)
        try:
            return self._run_on(conn, readonly, steps, kept=True)
        except _Stale:
            return self._run_on(self._fresh(engine, readonly), readonly, steps, kept=False)

    def _run_on(self, conn: Any, readonly: bool, steps: list[Step], *, kept: bool) -> list[Row]:
        dbapi_conn = conn.dbapi_connection
        cursor = dbapi_conn.cursor()
        step = 0
        try:
            for step, (statement, params, many) in enumerate(steps):  # noqa: B007
                if many:
                    cursor.executemany(statement, params)
                else:
                    cursor.execute(statement, params)
            rows: list[Row] = list(cursor.fetchall()) if readonly else []
            if not readonly:
                step = len(steps)  # from here on, COMMIT may have reached the server
                dbapi_conn.commit()
        except self.dialect.loaded_dbapi.Error as exc:
            raise self._failed(conn, readonly, steps, step, exc, kept) from exc
        finally:
            cursor.close()
        self._give_back(conn, readonly)
        return rows

    def _failed(
        self, conn: Any, readonly: bool, steps: list[Step], step: int, exc: Exception, kept: bool
    ) -> Exception:
        """Clean up after a driver error; return what to raise (_Stale asks for a retry)."""
        lost = self.dialect.is_disconnect(exc, conn.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
            self._drop_kept()
            if kept and step == 0:
                return _Stale()
        elif readonly or _rolled_back(conn):
            self._give_back(conn, readonly)
        statement, params, many = steps[min(step, len(steps) - 1)]
        return sa.exc.DBAPIError.instance(
            statement,
            params,
            exc,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=self.dialect,
            ismulti=many,
        )

    def _fresh(self, engine: Engine, readonly: bool) -> Any:
        conn = self.checkout(engine)
        if readonly:
            try:
                conn.dbapi_connection.autocommit(True)
            except Exception:
                conn.close()
                raise
        return conn

    def _give_back(self, conn: Any, readonly: bool) -> None:
        kept = self._kept[readonly]
        if len(kept) < self.keep:
            kept.append(conn)
        else:
            _release(conn, readonly)

    def _drop_kept(self) -> None:
        for readonly, kept in self._kept.items():
            while kept:
                try:
                    _release(kept.pop(), readonly)
                except IndexError:  # another thread took the last one meanwhile
                    break

    def _on_dispose(self, _engine: Engine) -> None:
        self._drop_kept()


def _is_eligible(engine: Engine) -> bool:
    """MySQL through a positional-%s driver, with a pool that keeps connections."""
    return (
        dialect.is_mysql(engine)
        and engine.dialect.paramstyle == "format"
        and isinstance(engine.pool, sa.pool.QueuePool)
    )


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


def _compile(stmt: sa.Insert, dialect_: Dialect, columns: list[str]) -> str:
    compiled = stmt.compile(dialect=dialect_, column_keys=columns)
    assert list(compiled.positiontup or ()) == columns, "parameters out of column order"
    return str(compiled)


@functools.lru_cache(maxsize=128)
def _select(dialect_: Dialect, count: int) -> str:
    """SELECT id, kind, version, body of ``count`` ids, live entities only."""
    ids = [sa.bindparam(f"id{n}") for n in range(count)]
    stmt = sa.select(entities.c.id, entities.c.kind, entities.c.version, entities.c.body).where(
        entities.c.id.in_(ids), entities.c.body.is_not(None)
    )
    return str(stmt.compile(dialect=dialect_))
