"""CursorPath: the core's fast path, run on the cursor of a Django connection.

On MySQL the store's hot calls (get, get_many, the puts of new entities, a compare-and-set put
of a new version, the pages of an indexed query) skip SQLAlchemy: :class:`~schemaless.fastpath.
FastPath` runs statements compiled once on kept DBAPI connections of the shard's own pool. A
:class:`~.connection.ConnectionShard` has no pool: its one connection is Django's, which the
store must use (DESIGN 5, "One connection"). Through SQLAlchemy on that connection a
``get(pk=)`` spent three quarters of its time building and executing the statement. So the
same statements, with FastPath's own logic of what to send (the fence check fused into the
change row's INSERT, the compare-and-set in the UPDATE), run here on Django's cursor:

- Django's ``CursorWrapper``, so ``connection.queries``, ``assertNumQueries``, the debug
  toolbar and Django's execute wrappers see every statement, as on the Core path;
- a write in :meth:`ConnectionShard.transaction`: the caller's transaction (a savepoint of it)
  or, in autocommit, BEGIN and COMMIT of its own; a refused fence rolls it back. In autocommit,
  a write whose statements need no answer in between (a put of one new entity, an unfenced
  compare-and-set) is sent as one multi-statement query, BEGIN to COMMIT: one round trip, as
  Django's own INSERT or UPDATE of a row is, where four would make it half as fast;
- Django's wrapped errors unwrapped to the driver's, and mapped by the shard layer as the
  Core path maps them (``Shard.error``, the SQLAlchemy error as the cause).

Nothing is kept between calls, so nothing goes stale: FastPath's pool handling is not used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import django.db
import sqlalchemy as sa

from schemaless.errors import ShardUnavailable
from schemaless.fastpath import Check, FastPath, Row, Step

if TYPE_CHECKING:
    from .connection import ConnectionShard

_SERVER_GONE = 2006  # CR_SERVER_GONE_ERROR: the client could not send the query


class CursorPath(FastPath):
    """FastPath's statements on a ConnectionShard's Django connection."""

    def __init__(self, shard: ConnectionShard) -> None:  # no pool: FastPath's own is unused
        self.shard = shard
        self.engine = shard.engine
        self.dialect = shard.engine.dialect
        self.error = shard.error
        self.breaker = shard.breaker
        self._error = self.dialect.loaded_dbapi.Error
        self.committed = None
        self._prepare()

    def _run(
        self,
        readonly: bool,
        steps: tuple[Step, ...],
        check: Check = None,
        batchable: bool = False,
    ) -> Sequence[Row]:
        started = self.breaker.check()
        try:
            if readonly:
                cursor = self._execute(steps)
                return self._mapped(cursor.fetchall, steps[-1])
            if batchable and self.shard.own_transaction():
                self._batched(steps, check)
                return ()
            with self.shard.transaction():
                cursor = self._execute(steps)
                refused = None if check is None else self._mapped(check, steps[-1], cursor)
                if refused is not None:
                    raise refused  # the fence refused a bucket: the transaction rolls back
            return ()
        except ShardUnavailable as error:
            self.breaker.failed(error, started)
            raise

    def _batched(self, steps: tuple[Step, ...], check: Check) -> None:
        """BEGIN, the steps and COMMIT as one multi-statement query (mysqlclient's connections
        accept them), each result read in turn: the server stops at a failed statement, and
        the transaction it leaves open is rolled back. ``check`` reads the last step's row
        count, after the COMMIT."""
        params = [value for _, values, _ in steps for value in values or ()]
        statements = (  # one written with its values needs its % doubled among the others
            s if values is not None or not params else s.replace("%", "%%")
            for s, values, _ in steps
        )
        sql = ";".join(("BEGIN", *statements, "COMMIT"))
        cursor = self.shard.wrapper.cursor()
        read = 0  # results read so far: BEGIN's, each step's, COMMIT's
        rowcount = -1
        try:
            cursor.execute(sql, params or None)
            driver = self.shard.wrapper.connection  # no result holds rows: read them there
            for read in range(1, len(steps) + 2):
                driver.next_result()
                if read == len(steps):
                    rowcount = driver.affected_rows()
        except (django.db.Error, self._error) as exc:
            error = self._dbapi_error(exc, steps[min(max(read - 1, 0), len(steps) - 1)])
            raise self._batch_failed(error, read) from error  # as on the Core path
        refused = None if check is None else check(_Counted(rowcount))
        if refused is not None:
            raise refused  # the compare-and-set matched nothing: nothing was written

    def _batch_failed(self, error: Exception, failed: int) -> Exception:
        """What to raise for ``error`` (SQLAlchemy's) in the batch's result number ``failed``
        (0: BEGIN's).

        A lost connection leaves the outcome unknown, unless the query was never sent (the
        driver's "server has gone away" before any result); a statement's error leaves the
        transaction open, and it is rolled back."""
        orig: Any = getattr(error, "orig", error)
        lost = self.dialect.is_disconnect(orig, None, None)
        if not lost:
            with contextlib.suppress(Exception):
                self.shard.wrapper.connection.rollback()
        unsent = failed == 0 and getattr(orig, "args", (None,))[0] == _SERVER_GONE
        return self.error(error, lost and not unsent)

    def _execute(self, steps: tuple[Step, ...]) -> Any:
        cursor = self.shard.wrapper.cursor()
        for step in steps:
            statement, params, many = step
            self._mapped(cursor.executemany if many else cursor.execute, step, statement, params)
        return cursor

    def _mapped(self, call: Any, step: Step, *args: Any) -> Any:
        """``call(*args)``, a driver error raised as the shard layer maps it, naming ``step``."""
        try:
            return call(*args)
        except (django.db.Error, self._error) as exc:
            error = self._dbapi_error(exc, step)
            raise self.error(error, False) from error  # the SQLAlchemy error, as on the Core path

    def _dbapi_error(self, exc: Exception, step: Step) -> Exception:
        """The SQLAlchemy error the Core path would have raised: Django's wrapping undone."""
        orig: Any = exc.__cause__ if isinstance(exc, django.db.Error) and exc.__cause__ else exc
        statement, params, many = step
        error = sa.exc.DBAPIError.instance(
            statement,
            params,
            orig,
            self._error,
            connection_invalidated=self.dialect.is_disconnect(orig, None, None),
            dialect=self.dialect,
            ismulti=many,
        )
        return error if isinstance(error, Exception) else orig


class _Counted:
    """What a check reads of a batched write: the row count of its last step."""

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount
