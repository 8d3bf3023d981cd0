"""Every difference between MySQL/MariaDB and SQLite, in one place.

The rest of the package speaks SQLAlchemy Core and asks this module for the column types that
differ (BINARY(16), MEDIUMBLOB, TIMESTAMP(6), binary-collated strings), for row locking
(``FOR UPDATE SKIP LOCKED`` and ``FOR SHARE`` on MySQL; SQLite serialises writers instead), and
for the engine set-up each backend needs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine, make_url

MYSQL = ("mysql", "mariadb")


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
    """A string column that compares byte-wise, as Python does."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *MYSQL
    )


def utcnow() -> dt.datetime:
    """Naive UTC, as every TIMESTAMP/DATETIME column here holds it."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def read(engine: Engine) -> Connection:
    """A connection for reading only: on SQLite it does not take the write lock."""
    return engine.connect().execution_options(schemaless_readonly=True)


def is_mysql(engine_or_conn: Any) -> bool:
    return engine_or_conn.dialect.name in MYSQL


def create_engine(url: str, **options: Any) -> Engine:
    """An engine set up for schemaless on either backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() in MYSQL:
        return _mysql_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **options)
    from .errors import ConfigurationError

    raise ConfigurationError(f"unsupported database {parsed.get_backend_name()!r}")


def _mysql_engine(url: sa.URL, **options: Any) -> Engine:
    query = dict(url.query)
    query.setdefault("charset", "utf8mb4")
    # TIMESTAMP columns convert through the session time zone: pin it, so UTC stays UTC.
    connect_args: dict[str, Any] = {"init_command": "SET time_zone = '+00:00'"}
    connect_args["conv"] = _mysql_conversions()
    connect_args.update(options.pop("connect_args", {}))
    options["connect_args"] = connect_args
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_recycle", 3600)  # below the server's default wait_timeout of 8 h
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    # READ COMMITTED: no gap locks, so the indexer's SKIP LOCKED claims never block new writes.
    options.setdefault("isolation_level", "READ COMMITTED")
    return sa.create_engine(url.set(query=query), **options)


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


def for_share(stmt: sa.Select[Any], conn: Any) -> sa.Select[Any]:
    """Hold readers' locks on rows until commit, so no writer changes them meanwhile."""
    return stmt.with_for_update(read=True) if is_mysql(conn) else stmt


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
