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

A store of several shards is several Django connections, and a transaction is one connection's:
:class:`OneShard` refuses, with ``NotSupportedError`` and before any statement, a write that
would make the caller's transaction span two shards, or escape it (DESIGN 5).

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
from django.db import NotSupportedError, transaction
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Connection

from schemaless.shard import DEFAULT_TIMEOUT, Shard

from .cursor_path import CursorPath

registry.register("sqlite.django", "schemaless.django.backends.connection", "DjangoSQLiteDialect")


class ConnectionShard(Shard):
    """One shard: the database of a Django alias, reached through its connection."""

    thread_bound = True  # Django's connections serve the thread that made them

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
        self.one_shard: OneShard | None = None  # set when the store has several shards
        if self.is_mysql:  # the core's hot statements, on this connection's cursor
            self.fast = CursorPath(self)

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """The block in a transaction of the store's own (:meth:`transaction`)."""
        with self.transaction(), super().begin() as conn:
            yield conn

    def own_transaction(self) -> bool:
        """Whether a write now is a transaction of the store's own, BEGIN to COMMIT on the
        connection: on MySQL, in autocommit, outside any atomic block. Raises
        ``NotSupportedError`` first for a write :class:`OneShard` refuses."""
        if self.one_shard is not None:
            self.one_shard.check(self)
        wrapper = self.wrapper
        return self.is_mysql and not wrapper.in_atomic_block and wrapper.get_autocommit()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The block in one transaction on the Django connection, committed when it ends
        without an error.

        Inside the caller's own atomic block (or the test's) it is
        ``transaction.atomic(using=alias)``: a savepoint, undone with the caller's transaction.
        On MySQL in autocommit, outside any block, it is BEGIN and COMMIT on the connection,
        as a plain model's write needs none: Django's atomic() would instead turn autocommit
        off and on again around the COMMIT, two round trips more on every write. A COMMIT
        that fails (Django's or ours) is mapped here.
        """
        wrapper = self.wrapper
        if not self.own_transaction():
            atomic = transaction.atomic(using=wrapper.alias)
            atomic._schemaless_own = True
            try:
                with atomic:
                    yield
            except NotSupportedError:
                raise  # a nested write refused by OneShard: no database error
            except django.db.Error as exc:
                raise self.error(exc.__cause__ or exc, committing=True) from exc
            return
        raw = wrapper.connection
        with self.mapped():
            raw.begin()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                raw.rollback()
            raise
        with self.mapped(committing=True):
            raw.commit()


class OneShard:
    """The rule that a Django transaction writes one shard of a store, never two.

    The caller's transaction is the outermost atomic block open on any of the store's aliases
    (see :func:`_transaction` for the blocks that are not).
    The first write in it notes its shard on that block; a write to another shard, or to a
    shard whose connection is outside every such block (it would commit on its own, whatever
    the transaction then does), raises ``NotSupportedError`` before any statement is sent.
    """

    def __init__(self, shards: list[ConnectionShard]) -> None:
        self.shards = shards
        for shard in shards:
            shard.one_shard = self

    def check(self, shard: ConnectionShard) -> None:
        blocks = [b for s in self.shards if (b := _transaction(s.wrapper)) is not None]
        if not blocks:
            return
        aliases = ", ".join(sorted({b.using or "default" for b in blocks}))
        for block in blocks:
            written = getattr(block, "_schemaless_shard", None)
            if written not in (None, shard.name):
                raise NotSupportedError(
                    f"a transaction on {aliases} wrote shard {written!r} and would write "
                    f"{shard.name!r} too: a schemaless transaction writes one shard"
                )
        if _transaction(shard.wrapper) is None:
            raise NotSupportedError(
                f"a write to shard {shard.name!r} inside a transaction on {aliases} would commit "
                f"on its own: open the transaction with atomic(using={shard.name!r})"
            )
        for block in blocks:
            block._schemaless_shard = shard.name


def _transaction(wrapper: Any) -> Any:
    """The caller's outermost atomic block on the connection, or None.

    Not a block of ``TestCase``'s, nor of the store's own (its writes, a migration's schema
    editor), nor an outermost one without a savepoint: that is how the ORM wraps its own
    multi-row writes (``bulk_create``, ``QuerySet.delete``), which on a store of several
    shards write each shard in a transaction of its own, as ``put_many`` does.
    """
    for block in wrapper.atomic_blocks:
        if not block._from_testcase and not getattr(block, "_schemaless_own", False):
            return block if block.savepoint else None
    return None


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
