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
  or, in autocommit, BEGIN and COMMIT of its own; a refused fence rolls it back;
- Django's wrapped errors unwrapped to the driver's, and mapped by the shard layer as the
  Core path maps them (``Shard.error``, the SQLAlchemy error as the cause).

Nothing is kept between calls, so nothing goes stale: FastPath's pool handling is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import django.db
import sqlalchemy as sa

from schemaless.errors import ShardUnavailable
from schemaless.fastpath import Check, FastPath, Row, Step

if TYPE_CHECKING:
    from .connection import ConnectionShard


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

    def _run(self, readonly: bool, steps: tuple[Step, ...], check: Check = None) -> Sequence[Row]:
        started = self.breaker.check()
        try:
            if readonly:
                cursor = self._execute(steps)
                return self._mapped(cursor.fetchall, steps[-1])
            with self.shard.transaction():
                cursor = self._execute(steps)
                refused = None if check is None else self._mapped(check, steps[-1], cursor)
                if refused is not None:
                    raise refused  # the fence refused a bucket: the transaction rolls back
            return ()
        except ShardUnavailable as error:
            self.breaker.failed(error, started)
            raise

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
