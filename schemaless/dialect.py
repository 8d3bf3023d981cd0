"""Every difference between MySQL/MariaDB and SQLite, in one place.

The rest of the package speaks SQLAlchemy Core and asks this module for the column types that
differ (BINARY(16), MEDIUMBLOB, TIMESTAMP(6), strings as UTF-8 bytes), for row locking
(``FOR UPDATE``, ``SKIP LOCKED`` for claims, on MySQL; SQLite serialises writers instead), and
for the engine set-up each backend needs.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine, make_url

MYSQL = ("mysql", "mariadb")

T = TypeVar("T")

# The most rows one statement carries: the tuples of an INSERT, the values of an IN list.
# Distributed MySQL engines (Vitess, TiDB, Galera) want batches this small (DESIGN 6), and
# mysqlclient's executemany only splits a multi-row INSERT at 64 KB of text, which small rows
# (change rows, index rows) pass at about a thousand: so every writer of many rows splits here.
MAX_ROWS = 1000


def batches(items: Sequence[T], size: int = MAX_ROWS) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``, for statements that each carry one slice."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def binary16() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary(16).with_variant(mysql.BINARY(16), *MYSQL)


def blob() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), *MYSQL)


def timestamp() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.TIMESTAMP(fsp=6), *MYSQL)


def bigint() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def text(length: int) -> sa.types.TypeEngine[str]:
    """A column of up to ``length`` characters that compares and orders as Python compares str.

    SQLite's TEXT already does (memcmp of UTF-8, no padding). On MySQL and MariaDB the column
    is ``VARBINARY`` holding the UTF-8 bytes: byte order of UTF-8 is code point order, nothing
    is padded (``utf8mb4_bin`` is PAD SPACE on MariaDB: ``'a' = 'a '``), and a comparison with
    a binary operand is binary whatever the connection's collation (see docs/design.md).
    """
    return sa.String(length).with_variant(Utf8Binary(4 * length), *MYSQL)


class Utf8Binary(sa.VARBINARY):
    """A str as its UTF-8 bytes in a ``VARBINARY`` column: encoded when bound, decoded when read.

    Values are bound as bytes so the comparison is binary on every server, never left to the
    coercion of a literal under the connection's collation. (A str with a lone surrogate has
    no UTF-8 form: queries refuse it before any SQL, see ``lookups``.)
    """

    def bind_processor(self, dialect: Any) -> Any:
        return _encode_utf8

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        return _decode_utf8


def _encode_utf8(value: Any) -> Any:
    return value.encode() if value.__class__ is str else value


def _decode_utf8(value: Any) -> Any:
    # bytes from a VARBINARY column; str from an index table made before (VARCHAR): kept as is.
    return value.decode("utf-8") if value.__class__ is bytes else value


def utcnow() -> dt.datetime:
    """Naive UTC, as every TIMESTAMP/DATETIME column here holds it."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def read(engine: Engine) -> Connection:
    """A connection for reading only: on SQLite it does not take the write lock."""
    return engine.connect().execution_options(schemaless_readonly=True)


def is_mysql(engine_or_conn: Any) -> bool:
    return engine_or_conn.dialect.name in MYSQL


def create_engine(url: str, *, timeout: float = 2.0, **options: Any) -> Engine:
    """An engine set up for schemaless on either backend.

    On MySQL, ``timeout`` bounds connecting, each read and each write on the socket, and the
    wait for a pooled connection: a silent server costs at most that, never a hang.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() in MYSQL:
        return _mysql_engine(parsed, timeout, **options)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **options)
    from .errors import ConfigurationError

    raise ConfigurationError(f"unsupported database {parsed.get_backend_name()!r}")


def hide_password(url: str) -> str:
    """The URL as it may be shown in an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _mysql_engine(url: sa.URL, timeout: float, **options: Any) -> Engine:
    query = dict(url.query)
    query.setdefault("charset", "utf8mb4")
    # TIMESTAMP columns convert through the session time zone: pin it, so UTC stays UTC. The
    # URL's own init_command runs first (the driver raises its error; it ignores a later one's).
    init = "SET time_zone = '+00:00'"
    theirs = query.pop("init_command", None)
    connect_args: dict[str, Any] = {"init_command": init if not theirs else f"{theirs}; {init}"}
    connect_args["conv"] = _mysql_conversions()
    seconds = socket_timeout(timeout)
    connect_args.update(connect_timeout=seconds, read_timeout=seconds, write_timeout=seconds)
    options.setdefault("pool_timeout", timeout)
    connect_args.update(options.pop("connect_args", {}))
    options["connect_args"] = connect_args
    ping = options.pop("pool_pre_ping", True)
    options.setdefault("pool_recycle", 3600)  # below the server's default wait_timeout of 8 h
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    # READ COMMITTED: no gap locks, so the indexer's SKIP LOCKED claims never block new writes.
    options.setdefault("isolation_level", "READ COMMITTED")
    engine = sa.create_engine(url.set(query=query), **options)
    if ping:
        _ping_on_checkout(engine, seconds)
    return engine


def socket_timeout(timeout: float) -> int:
    """The seconds each connect, read and write on a MySQL socket may wait, for ``timeout``.

    mysqlclient takes whole seconds: at least one, so a timeout below it still times out.
    With libmariadb a silent server costs one such wait per call, not three (libmysqlclient
    retries a timed-out read twice): measured in tests/faults/test_proxy.py.
    """
    return max(1, math.ceil(timeout))


_FRESH = "schemaless_fresh"  # in a pooled connection's info: opened, not yet checked out


def _ping_on_checkout(engine: Engine, seconds: int) -> None:
    """The pool's pre-ping, except that a server which did not answer is not dialled again.

    SQLAlchemy's ``pool_pre_ping`` reconnects whenever a ping fails: right after a server
    restarted, but also after a ping that waited its whole read timeout on a silent server,
    and then the reconnect waits its connect timeout too, doubling what a call costs. Here a
    ping that failed at once (the server closed the connection) asks the pool for a new
    connection, as pre-ping does; one that failed only after half its timeout raises, so the
    caller waits for a silent server once.
    """
    error = engine.dialect.loaded_dbapi.Error
    quick = seconds / 2

    @event.listens_for(engine, "connect")
    def _opened(_dbapi_conn: Any, record: Any) -> None:
        record.info[_FRESH] = True  # a connection just opened needs no ping

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return
        started = time.monotonic()
        try:
            dbapi_conn.ping()
        except error as exc:
            if time.monotonic() - started < quick:
                raise sa.exc.InvalidatePoolError(str(exc)) from exc
            raise


def _mysql_conversions() -> dict[Any, Any]:
    """mysqlclient's conversions, with datetimes read and written by CPython's C code.

    mysqlclient parses each DATETIME it reads, and formats each datetime it sends, in Python,
    field by field: an indexed query of ten rows spent a tenth of its Python time parsing, and a
    backfill an eighth of its time formatting. ``fromisoformat`` and ``isoformat`` give the same
    values several times faster; zero dates and anything else they refuse go to the originals.
    """
    from MySQLdb.constants import FIELD_TYPE
    from MySQLdb.converters import conversions
    from MySQLdb.times import DateTime_or_None

    fromisoformat = dt.datetime.fromisoformat  # looked up once: this runs for every value read

    def to_datetime(text: str) -> Any:
        if len(text) < 11:  # mysqlclient's own rule: a DATETIME shown as a date is a date
            return DateTime_or_None(text)
        try:
            return fromisoformat(text)
        except ValueError:
            return DateTime_or_None(text)

    def datetime_literal(value: dt.datetime, _encoders: Any) -> bytes:
        if value.tzinfo is not None:  # mysqlclient writes the wall time and drops the zone
            value = value.replace(tzinfo=None)
        return b"'" + value.isoformat(" ").encode() + b"'"  # digits and -: . only: no escaping

    return {
        **conversions,
        FIELD_TYPE.DATETIME: to_datetime,
        FIELD_TYPE.TIMESTAMP: to_datetime,
        dt.datetime: datetime_literal,
    }


def _sqlite_engine(url: sa.URL, **options: Any) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that later upgrades can
        # deadlock against another writer, and SQLite then fails at once instead of waiting.
        readonly = conn.get_execution_options().get("schemaless_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def for_update_skip_locked(stmt: sa.Select[Any], conn: Any) -> sa.Select[Any]:
    """Claim rows other workers have not claimed; SQLite's write lock already serialises."""
    return stmt.with_for_update(skip_locked=True) if is_mysql(conn) else stmt


def for_update(stmt: sa.Select[Any], conn: Any) -> sa.Select[Any]:
    """Hold the rows exclusively until commit: writers and other holders wait for it.

    Whoever decides what to write from rows it read locks them so; shared locks (``FOR
    SHARE``) do not exclude each other, and two holders would act on the same state. SQLite's
    one writer at a time already excludes.
    """
    return stmt.with_for_update() if is_mysql(conn) else stmt


def max_packet(conn: Any) -> int | None:
    """The server's max_allowed_packet, which caps what one entity may weigh."""
    if not is_mysql(conn):
        return None
    return int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar())


_TRANSIENT = {1205, 1213}  # lock wait timeout, deadlock


def error_code(exc: Any) -> int | None:
    """The MySQL error number behind a SQLAlchemy DBAPIError, if any."""
    orig = getattr(exc, "orig", None)
    return orig.args[0] if orig is not None and orig.args else None


def is_transient(exc: Any) -> bool:
    """A lock conflict that trying the same transaction again resolves."""
    locked = "database is locked" in str(getattr(exc, "orig", ""))
    return error_code(exc) in _TRANSIENT or locked
