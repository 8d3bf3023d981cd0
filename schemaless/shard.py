"""Shard: one database server, and the one boundary between schemaless and its driver.

Everything that talks to a database goes through a :class:`Shard`: the store's reads and writes,
the fast path's kept connections, the query reader, the index writer, the registry, migrations
and the daemons. Here, and only here, connections are opened (with connect, read and write
timeouts, so a silent server costs at most ``timeout`` seconds), and every driver or SQLAlchemy
error is turned into one of ours, the driver's exception chained as the cause:

- a refused, dropped or timed-out connection: :class:`ShardUnavailable`, naming the shard;
- a connection lost after COMMIT was sent: :class:`OutcomeUnknown` (the write may have happened);
- a lock wait timeout, a deadlock or a Galera certification conflict: :class:`ShardBusy`, which
  callers that own a whole transaction retry;
- a missing table, an unknown database, refused credentials: :class:`ConfigurationError`;
- anything else: :class:`SchemalessError` naming the shard and the server's message.

A statement can also run on a connection that someone else owns (a Django connection lent to the
store): :meth:`Shard.mapped` maps the errors of any block of work without opening anything.

    >>> shard = Shard("s0", engine, timeout=2.0)
    >>> with shard.begin() as conn:          # one transaction; COMMIT at the end
    ...     conn.execute(...)
    >>> with shard.read() as conn:           # reading only: no write lock on SQLite
    ...     conn.execute(...).all()
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import dialect
from .errors import (
    ConfigurationError,
    OutcomeUnknown,
    SchemalessError,
    ShardBusy,
    ShardUnavailable,
)
from .fastpath import FastPath

if TYPE_CHECKING:
    from .replica import Replicas

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 2.0
DDL_LOCK_WAIT = 1  # seconds DDL waits for a table's metadata lock before it gives up

# MySQL client and server error numbers that mean the connection is gone or never was.
# 1047: a Galera node outside the primary component ("WSREP has not yet prepared node").
_LOST = {1047, 1053, 1077, 1152, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055, 4031}
_BUSY = {1205, 1213, 1180, 1181, 1637}  # lock wait, deadlock, (Galera) commit/cert conflicts
_MISSING_TABLE = 1146
_CONFIG = {1044, 1045, 1049, 1698}  # access denied (db, user), unknown database


def _driver_errors() -> tuple[type[BaseException], ...]:
    """The DB-API error classes of the drivers we use, caught where a driver is called raw."""
    found: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        import MySQLdb

        found.append(MySQLdb.Error)
    import sqlite3

    found.append(sqlite3.Error)
    return tuple(found)


# What the boundary catches: SQLAlchemy's errors, and the drivers' own where they are called raw.
_CAUGHT: tuple[type[BaseException], ...] = (sa.exc.SQLAlchemyError, *_driver_errors())


class Shard:
    """One named database and the connections to it."""

    # Whether its connections serve their own thread only (a Django connection's): a fan-out
    # over such shards then runs them one after the other, in the calling thread.
    thread_bound = False

    def __init__(self, name: str, engine: Engine, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.name = name
        self.engine = engine
        self.timeout = timeout
        self.is_mysql = dialect.is_mysql(engine)
        self.breaker = Breaker(name, timeout)
        # On MySQL, get and the puts of new entities skip SQLAlchemy's per-call round trips
        # (pre-ping, reset) and run on kept DBAPI connections: see fastpath.py for why and how.
        self.fast = FastPath.serving(engine, self._checkout, self.error, self.breaker)
        self.replicas: Replicas | None = None  # reads asked of replicas: see replica.py

    def __repr__(self) -> str:
        return f"<Shard {self.name} {self.engine.url!r}>"

    # -- opening -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends without an error.

        A connection lost while COMMIT was on its way raises :class:`OutcomeUnknown`; any
        other failure rolls back and raises one of ours.
        """
        with self._connection(self.engine.connect) as conn:
            with self.mapped():
                trans = conn.begin()
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):
                    trans.rollback()
                raise
            with self.mapped(committing=True):
                trans.commit()
            if self.replicas is not None:  # read-your-writes: the GTID, same connection
                self.replicas.capture(conn.connection)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading only (on SQLite it does not take the write lock)."""
        with self._connection(lambda: dialect.read(self.engine)) as conn:
            yield conn

    @contextlib.contextmanager
    def _connection(self, opener: Callable[[], Connection]) -> Iterator[Connection]:
        """A connection from ``opener``, closed after the block; errors mapped, and the
        shard's circuit breaker told of an outage (or refusing at once while it is open)."""
        started = self.breaker.check()
        try:
            with self.mapped():
                conn = opener()
            try:
                yield conn
            except _CAUGHT as exc:
                raise self.error(exc) from exc
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
        except ShardUnavailable as error:
            self.breaker.failed(error, started)
            raise

    @contextlib.contextmanager
    def ddl(self, what: str) -> Iterator[Connection]:
        """A transaction for DDL that waits at most DDL_LOCK_WAIT seconds for a table's lock.

        Behind an open reader, MySQL's DDL would wait for ``lock_wait_timeout`` (a day by
        default) and queue every writer of that table behind it; a short wait fails fast
        instead, naming ``what`` was waited on.
        """
        try:
            with self.begin() as conn:
                if self.is_mysql:
                    conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {DDL_LOCK_WAIT}")
                yield conn
        except ShardBusy as exc:
            raise ShardBusy(
                f"shard {self.name}: {what} waited over {DDL_LOCK_WAIT} s for a table lock "
                "held by another session (an open transaction or a long query); try again",
                shard=self.name,
            ) from exc

    @contextlib.contextmanager
    def mapped(self, *, committing: bool = False) -> Iterator[None]:
        """Run a block of work, turning driver and SQLAlchemy errors into ours."""
        try:
            yield
        except _CAUGHT as exc:
            raise self.error(exc, committing=committing) from exc

    def serve(self, work: Callable[[Shard], T], consistency: str = "primary") -> T:
        """``work(shard)`` on this shard; with ``consistency="replica"``, on a replica of it
        that holds this store's writes, else here (see :mod:`schemaless.replica`)."""
        if consistency == "primary" or self.replicas is None:
            return work(self)
        return self.replicas.read(work)

    def add_replicas(self, replicas: Sequence[Shard]) -> Replicas:
        """Serve ``consistency="replica"`` reads from these replicas of this shard's server.

        From now on every write committed here also reads its GTID, on its own connection
        (the fast path's too), so that this store's replica reads can wait for it.
        """
        from .replica import Replicas

        self.replicas = Replicas(self, replicas)
        if self.fast is not None:
            self.fast.committed = self.replicas.capture
        return self.replicas

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replicas is not None:
            self.replicas.dispose()

    # -- errors --------------------------------------------------------------------------------

    def error(self, exc: BaseException, committing: bool = False) -> SchemalessError:
        """The error of ours that ``exc`` (driver or SQLAlchemy) means on this shard."""
        if isinstance(exc, SchemalessError):
            return exc
        orig = getattr(exc, "orig", None) or exc
        code = _code(orig)
        text = str(orig)
        where = f"shard {self.name}"
        if _is_lost(exc, orig, code):
            if committing:
                return OutcomeUnknown(
                    f"{where}: the connection broke after COMMIT was sent; the write may or may "
                    f"not have happened ({text})",
                    shard=self.name,
                )
            return ShardUnavailable(f"{where} is unavailable: {text}", shard=self.name)
        if code in _BUSY or "database is locked" in text:
            return ShardBusy(f"{where} is busy: {text}", shard=self.name)
        if code == _MISSING_TABLE or "no such table" in text:
            return ConfigurationError(f"{where}: {text}: run `schemaless migrate`")
        if code in _CONFIG:
            return ConfigurationError(f"{where}: {text}")
        if isinstance(exc, sa.exc.NoSuchModuleError | sa.exc.ArgumentError):
            return ConfigurationError(f"{where}: {text}")
        return SchemalessError(f"{where}: {type(orig).__name__}: {text}")

    def _checkout(self, engine: Engine) -> Any:
        """A pooled DBAPI connection for the fast path, pinged by the pool."""
        with self.mapped():
            return engine.raw_connection()


class Breaker:
    """Remembers a shard that did not answer, so that no call waits on it twice in a row.

    Every socket wait is bounded (``dialect.socket_timeout``), but a call that reaches a silent
    shard twice (a registry read that falls back to the next shard and then reads this one's
    index table, a daemon's loop, a scatter query after a get) would wait twice. A failure that
    took at least half a socket timeout (the server was silent, not merely restarted) opens the
    breaker for ``timeout`` seconds: calls on the shard then fail at once with
    :class:`ShardUnavailable` naming it. After that the next call tries the server again (the
    probe); if it answers, nothing is remembered. A failure that came at once (a refused or
    reset connection) never opens it, so a restarted server is used again at once.
    """

    def __init__(self, shard: str, timeout: float) -> None:
        self.shard = shard
        self.timeout = timeout
        self.slow = dialect.socket_timeout(timeout) / 2
        self._open_until = 0.0
        self._reason = ""

    def check(self) -> float:
        """Raise while open; else the time the call starts, for :meth:`failed`."""
        now = time.monotonic()
        if now < self._open_until:
            raise ShardUnavailable(
                f"shard {self.shard} is unavailable: it did not answer within "
                f"{self.timeout:g} s ({self._reason}); tried again in "
                f"{self._open_until - now:.1f} s",
                shard=self.shard,
            )
        return now

    def failed(self, error: ShardUnavailable, started: float) -> None:
        """Open when ``error`` is this shard's and the server kept the call waiting."""
        waited = time.monotonic() - started
        if error.shard != self.shard or isinstance(error, ShardBusy) or waited < self.slow:
            return
        now = time.monotonic()
        # DEBUG only: the caller gets the error, and the daemons log outages themselves.
        logger.debug("shard %s did not answer for %.1f s: %s", self.shard, waited, error)
        self._reason = str(error)[:200]
        self._open_until = now + self.timeout


def _code(orig: Any) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_lost(exc: BaseException, orig: Any, code: int | None) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError):
        return True  # the pool had no connection to give in time, or a ping failed
    if code in _LOST:
        return True
    name = type(orig).__name__
    if name == "InterfaceError":  # mysqlclient: a closed connection used again
        return True
    return name == "OperationalError" and code is None and "unable to open" in str(orig)
