"""ConnectionShard: a shard whose statements run on a Django connection.

The contract (DESIGN 5, "One connection") wants every store statement on a schemaless alias to
run on that alias's Django connection, so that ``transaction.atomic(using=...)``, ``TestCase``'s
rollback, ``assertNumQueries`` and ``connection.queries`` see store work like any other. The
store reaches databases only through :class:`~schemaless.shard.Shard`, so this is one Shard
whose SQLAlchemy engine has no pool of its own: its one "DBAPI connection" is a proxy of the
Django connection, whose cursors are Django's cursors (logged, counted, error-wrapped), and
whose ``commit`` and ``rollback`` do nothing: Django owns the transaction. :meth:`begin` runs
the block in ``transaction.atomic(using=alias)``, a transaction of its own or a savepoint of
the caller's.

    >>> shard = ConnectionShard(connection)      # a schemaless backend's DatabaseWrapper
    >>> with shard.begin() as conn:              # transaction.atomic(using=connection.alias)
    ...     conn.execute(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import django.db
import sqlalchemy as sa
from django.db import transaction
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Connection

from schemaless.shard import DEFAULT_TIMEOUT, Shard

registry.register("sqlite.django", "schemaless.django.backends.connection", "DjangoSQLiteDialect")


class ConnectionShard(Shard):
    """One shard: the database of a Django alias, reached through its connection."""

    def __init__(self, wrapper: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.wrapper = wrapper
        url = "mysql+mysqldb://" if wrapper.vendor == "mysql" else "sqlite+django://"
        engine = sa.create_engine(
            url,
            creator=lambda: DjangoDBAPIConnection(wrapper),
            poolclass=sa.pool.StaticPool,
            pool_reset_on_return=None,
            paramstyle="format",  # Django's cursors take %s on both backends
        )
        super().__init__(wrapper.alias, engine, timeout=timeout)

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """The block in ``transaction.atomic(using=alias)``: Django commits or rolls back.

        Inside the caller's own atomic block this is a savepoint, undone with the caller's
        transaction (or the test's). A COMMIT that fails is Django's, mapped here.
        """
        try:
            with transaction.atomic(using=self.wrapper.alias), super().begin() as conn:
                yield conn
        except django.db.Error as exc:
            raise self.error(exc.__cause__ or exc, committing=True) from exc


class DjangoDBAPIConnection:
    """What SQLAlchemy takes for a DBAPI connection: Django's connection, lent.

    Cursors are Django's, with the driver's own exceptions re-raised (SQLAlchemy, and then the
    shard layer, map those); ``commit``, ``rollback`` and ``close`` are Django's business.
    """

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def cursor(self) -> DjangoCursor:
        return DjangoCursor(self._wrapper.cursor())

    def commit(self) -> None:
        """Django's atomic block commits."""

    def rollback(self) -> None:
        """Django's atomic block rolls back."""

    def close(self) -> None:
        """The connection is Django's, closed by Django."""

    def __getattr__(self, name: str) -> Any:
        self._wrapper.ensure_connection()
        return getattr(self._wrapper.connection, name)


class DjangoCursor:
    """A Django cursor that raises the driver's exceptions, as a DBAPI cursor does."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Any = None) -> Any:
        with _driver_errors():
            return self._cursor.execute(sql, params)

    def executemany(self, sql: str, param_list: Any) -> Any:
        with _driver_errors():
            return self._cursor.executemany(sql, param_list)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@contextlib.contextmanager
def _driver_errors() -> Iterator[None]:
    """Django wraps the driver's errors in its own; SQLAlchemy maps only the driver's."""
    try:
        yield
    except django.db.Error as exc:
        if isinstance(exc.__cause__, Exception):
            raise exc.__cause__ from None
        raise


class _DjangoDateTime(DATETIME):
    """A DATETIME that Django's sqlite3 connection already parsed (it registers a converter)."""

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        parse = super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            return parse(value) if isinstance(value, str) and parse else value

        return process


class DjangoSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, on a connection Django opened with ``detect_types``."""

    supports_statement_cache = True
    colspecs = {**SQLiteDialect_pysqlite.colspecs, sa.DateTime: _DjangoDateTime}
