"""Failure: an entity the indexer set aside, because applying its change failed for a reason
that trying again will not cure.

Poison input never stops the indexer (DESIGN section 4). A value an index column cannot hold
never reaches SQL: :func:`~schemaless.index.normalize` refuses it and the entity is left out of
that one index. What remains is poison that only shows when a change is applied: a body that
cannot be decoded (bytes written around the store, a pickle read without ``allow_pickle``), or a
row the server refuses. When a batch fails so, the worker rolls it back and applies its entities
one at a time, each under a savepoint; one that fails alone is *set aside*: a row here holds its
id, kind, version and error, its change rows are deleted with the batch's, and the rest of the
batch is applied. A failure counts while its version is the entity's current one: a later
version that applies cleanly takes the entity off the list (the row is left for :func:`requeue`
to sweep, so the batches that apply cleanly pay nothing for this). :func:`requeue`
(``schemaless indexer --retry-set-aside``) turns every current one back into a change row, for
after a repair.

What is not poison waits and is tried again: a server away or busy (:class:`ShardUnavailable`,
its subclasses) or a table missing (:class:`ConfigurationError`: a migration to run, an index
dropped under the batch). Those are states of the system, not of one entity.

    >>> for failure in store.set_aside():
    ...     print(failure.entity_id, failure.error)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import dialect
from .errors import ConfigurationError, SchemalessError, ShardUnavailable
from .tables import entities, entity_changes, entity_failures

if TYPE_CHECKING:
    from .shard import Shard
    from .shards import ShardMap

logger = logging.getLogger(__name__)

MAX_ERROR = 1000  # characters of an error kept: enough to say what, never a whole body
_CHUNK = 1000  # rows per statement and per transaction when re-queueing


@dataclasses.dataclass(frozen=True)
class Failure:
    """One entity set aside: what it was, why, since when, and how often it failed."""

    entity_id: uuid.UUID
    kind: str
    version: int
    error: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    attempts: int
    shard: str

    def as_json(self) -> dict[str, Any]:
        """The failure as ``schemaless status --json`` shows it."""
        data = dataclasses.asdict(self)
        data["entity_id"] = str(self.entity_id)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data


def is_poison(exc: BaseException) -> bool:
    """Whether applying the same change again would fail the same way (see the module doc).

    ``exc`` is one of ours, as the shard layer maps driver errors (``Shard.error``).
    """
    if not isinstance(exc, Exception):
        return False  # KeyboardInterrupt, SystemExit: never an entity's fault
    return not isinstance(exc, ShardUnavailable | ConfigurationError)


def describe(error: BaseException) -> str:
    """The error as stored: its class and message, cut to MAX_ERROR characters."""
    if type(error) is SchemalessError:  # the shard layer's message names the driver's class
        return str(error)[:MAX_ERROR]
    return f"{type(error).__name__}: {error}"[:MAX_ERROR]


@contextlib.contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """Run a block under a savepoint of ``conn``'s transaction, undone if the block raises.

    The caller's transaction (its claimed change rows, its locks) lives on either way. When
    the server already rolled the whole transaction back (a deadlock), undoing the savepoint
    fails too: the block's own error is the one raised.
    """
    nested = conn.begin_nested()
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            nested.rollback()
        raise
    nested.commit()


# -- writing, in the indexer's transaction ------------------------------------------------------


def set_aside(conn: Connection, entity_id: bytes, kind: str, version: int, error: str) -> None:
    """Record (or count again) an entity set aside, in ``conn``'s transaction on its shard."""
    now = dialect.utcnow()
    again = {"kind": kind, "version": version, "error": error[:MAX_ERROR], "last_seen": now}
    if not _count_again(conn, entity_id, again):
        _insert(conn, entity_id, again, now)
    logger.warning(
        "entity %s (%s, version %d) set aside: %s; `schemaless indexer --retry-set-aside` "
        "re-queues it",
        uuid.UUID(bytes=entity_id),
        kind,
        version,
        error,
    )


def _insert(conn: Connection, entity_id: bytes, values: dict[str, Any], now: dt.datetime) -> None:
    first = {**values, "entity_id": entity_id, "first_seen": now, "attempts": 1}
    try:
        with savepoint(conn):
            conn.execute(entity_failures.insert(), first)
    except Exception:
        # Another worker set the same entity aside first (two change rows of one entity):
        # count this as one more attempt on its row; if there is none, the error was real.
        if not _count_again(conn, entity_id, values):
            raise


def _count_again(conn: Connection, entity_id: bytes, values: dict[str, Any]) -> bool:
    stmt = (
        entity_failures.update()
        .where(entity_failures.c.entity_id == entity_id)
        .values(**values, attempts=entity_failures.c.attempts + 1)
    )
    return bool(conn.execute(stmt).rowcount)


def clear(conn: Connection, entity_ids: Iterable[bytes]) -> None:
    """Forget these entities' failures: a change of theirs has just applied cleanly."""
    ids = list(entity_ids)
    if ids:
        conn.execute(entity_failures.delete().where(entity_failures.c.entity_id.in_(ids)))


# -- reading and re-queueing, over every shard --------------------------------------------------


# A failure of an older version than the entity's is cured: a later version applied cleanly.
_current = sa.and_(
    entities.c.id == entity_failures.c.entity_id, entities.c.version <= entity_failures.c.version
)


def listed(shards: ShardMap, limit: int | None = None) -> list[Failure]:
    """The entities set aside on every shard, the longest-standing first."""
    stmt = (
        sa.select(entity_failures).join(entities, _current).order_by(entity_failures.c.first_seen)
    )
    found: list[Failure] = []
    for shard in shards:
        with shard.read() as conn:
            rows = conn.execute(stmt.limit(limit) if limit else stmt).all()
        found += [_failure(row, shard) for row in rows]
    found.sort(key=lambda failure: failure.first_seen)
    return found[:limit] if limit else found


def count(shards: ShardMap) -> int:
    """How many entities are set aside, over every shard."""
    stmt = sa.select(sa.func.count()).select_from(entity_failures.join(entities, _current))
    total = 0
    for shard in shards:
        with shard.read() as conn:
            total += conn.execute(stmt).scalar_one()
    return total


def requeue(shards: ShardMap) -> int:
    """Turn every set-aside entity back into a change row for the indexer; how many there were.

    Each shard's rows move in transactions of up to 1000, in id order: a change row is
    written and the failure row deleted together, so a crash loses neither, and an entity that
    a running indexer sets aside again meanwhile waits for the next retry. Cured failures (see
    the module doc) are deleted without a change row.
    """
    total = 0
    for shard in shards:
        last = b""
        while True:
            looked_at, requeued = _requeue_some(shard, last)
            if not looked_at:
                break
            total, last = total + requeued, looked_at[-1]
    if total:
        logger.info("re-queued %d set-aside entities", total)
    return total


def _requeue_some(shard: Shard, after: bytes) -> tuple[list[bytes], int]:
    """Move up to _CHUNK failures with ids past ``after`` back to the change log: the ids
    looked at, and how many were current (re-queued) rather than cured (only deleted)."""
    failures = entity_failures.c
    stmt = (
        sa.select(failures.entity_id, failures.kind, failures.version, entities.c.version)
        .outerjoin(entities, entities.c.id == failures.entity_id)
        .where(failures.entity_id > after)
        .order_by(failures.entity_id)
        .limit(_CHUNK)
    )
    with shard.begin() as conn:
        rows = conn.execute(stmt).all()
        now = dialect.utcnow()
        changes = [
            {"entity_id": row[0], "kind": row[1], "version": row[2], "created": now}
            for row in rows
            if row[3] is not None and row[3] <= row[2]
        ]
        if changes:
            conn.execute(entity_changes.insert(), changes)
        looked_at = [bytes(row[0]) for row in rows]
        clear(conn, looked_at)
    return looked_at, len(changes)


def _failure(row: Any, shard: Shard) -> Failure:
    return Failure(
        entity_id=uuid.UUID(bytes=bytes(row.entity_id)),
        kind=row.kind,
        version=row.version,
        error=row.error,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        attempts=row.attempts,
        shard=shard.name,
    )
