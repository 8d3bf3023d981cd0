"""Fence: the buckets a shard refuses writes for, enforced by the server inside every write.

When a move hands buckets to another shard (DESIGN 6, "Moving buckets online"), a process that
has not read the new map yet still routes their writes to the old owner. The old owner must
refuse them, and the refusal must hold inside the write's own transaction, or a write checked
a moment before the hand-over could commit after the copy was taken, and be lost.

Each shard holds one ``schemaless_fence`` row per shard group number (all 16 made by the
migration): ``refused`` is '' (nothing refused) or 4096 characters, '1' where a write of that
bucket is refused. Every write reads its group's row ``FOR SHARE`` in its own transaction, as
the last statement before COMMIT: fused into the INSERT of its change row (``INSERT ...
SELECT ... FROM schemaless_fence WHERE number = ? AND SUBSTR(refused, bucket + 1, 1) <> '1'
LOCK IN SHARE MODE``), so a single put pays no extra round trip, only a shared lock on a row
that no one writes outside a move. A write of many rows (``put_many``) or a sync-indexed write
reads the rows with one statement of its own. No row inserted means refused: the transaction
is rolled back and :class:`~schemaless.errors.BucketMoved` raised; the store reloads the map
and writes on the new owner.

A move freezes its buckets with an UPDATE of the row (:func:`refuse`): the exclusive lock waits
for every write holding the shared one (so every write that passed the check has committed
when the freeze commits, as Vitess's ``LOCK TABLES`` after its denied-tables rule waits for
writes in flight) and makes later ones read the new bits. SQLite's one write lock gives the
same order.

    >>> with shard.begin() as conn:
    ...     fence.refuse(conn, 0, range(0, 100))     # writes of buckets 0-99 are refused here
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from . import dialect
from .bucket_map import BUCKETS, group_number
from .errors import BucketMoved, ConfigurationError
from .tables import entity_changes, fences

REFUSED = "1"
_CHANGE_COLUMNS = ["entity_id", "kind", "version", "created"]


def position(id_bytes: bytes) -> tuple[int, int]:
    """(group number, bucket + 1) of an id: the fence row to read, and where in it to look."""
    return group_number(id_bytes), int.from_bytes(id_bytes[:2], "big") % BUCKETS + 1


def refuses(refused: str, bucket: int) -> bool:
    return refused[bucket : bucket + 1] == REFUSED


def refusal(shard: str, id_bytes: bytes) -> BucketMoved:
    number, place = position(id_bytes)
    return BucketMoved(
        f"shard {shard} refused a write of entity {uuid.UUID(bytes=id_bytes)}: bucket "
        f"{place - 1} of group number {number} is not its own (moved, or being moved)",
        shard=shard,
    )


# -- the write path --------------------------------------------------------------------------


def _fenced_insert() -> sa.Insert:
    values: list[sa.BindParameter[Any]] = [
        sa.bindparam("entity_id", type_=dialect.binary16()),
        sa.bindparam("kind", type_=sa.String(64)),
        sa.bindparam("version", type_=sa.BigInteger()),
        sa.bindparam("created", type_=dialect.timestamp()),
    ]
    checked = (
        sa.select(*values)
        .where(
            fences.c.number == sa.bindparam("number"),
            # literals, not parameters: the fast path's statement takes exactly six
            sa.func.substr(fences.c.refused, sa.bindparam("place"), sa.literal_column("1"))
            != sa.literal_column(f"'{REFUSED}'"),
        )
        .with_for_update(read=True)
    )
    return entity_changes.insert().from_select(_CHANGE_COLUMNS, checked)


_FENCED_INSERT = _fenced_insert()


def log_change(conn: Connection, change: Mapping[str, Any], shard: str) -> None:
    """Insert one change row unless the fence refuses its bucket (then BucketMoved)."""
    number, place = position(change["entity_id"])
    result = conn.execute(_FENCED_INSERT, {**change, "number": number, "place": place})
    if result.rowcount != 1:
        raise _refused_or_missing(conn, change["entity_id"], shard)


def check(conn: Connection, ids: Sequence[bytes], shard: str) -> None:
    """Read the fence rows of these ids' groups FOR SHARE; BucketMoved for a refused one."""
    numbers = sorted({group_number(i) for i in ids})
    stmt = sa.select(fences.c.number, fences.c.refused).where(fences.c.number.in_(numbers))
    found = {row.number: row.refused for row in conn.execute(stmt.with_for_update(read=True))}
    error = refused_among(found, ids, shard)
    if error is not None:
        raise error


def refused_among(found: Mapping[int, str], ids: Sequence[bytes], shard: str) -> Exception | None:
    """The error for the first id whose bucket the fence rows ``found`` refuse, else None."""
    for id_bytes in ids:
        number, place = position(id_bytes)
        refused = found.get(number)
        if refused is None:
            return _missing(shard, number)
        if refuses(refused, place - 1):
            return refusal(shard, id_bytes)
    return None


def _refused_or_missing(conn: Connection, id_bytes: bytes, shard: str) -> Exception:
    number, _ = position(id_bytes)
    held = conn.execute(sa.select(fences.c.number).where(fences.c.number == number)).first()
    return refusal(shard, id_bytes) if held is not None else _missing(shard, number)


def _missing(shard: str, number: int) -> ConfigurationError:
    return ConfigurationError(
        f"shard {shard} has no fence row for group number {number}: run `schemaless migrate`"
    )


@functools.lru_cache(maxsize=16)
def fenced_insert_sql(dialect_: Dialect) -> str:
    """The fused change-row INSERT for the fast path: parameters entity_id, kind, version,
    created, number, place."""
    compiled = _FENCED_INSERT.compile(dialect=dialect_)
    order = [*_CHANGE_COLUMNS, "number", "place"]
    assert list(compiled.positiontup or ()) == order, "parameters out of order"
    return str(compiled)


@functools.lru_cache(maxsize=16)
def guard_sql(dialect_: Dialect, count: int) -> str:
    """SELECT number, refused of ``count`` fence rows, FOR SHARE: the fast path's put_many."""
    numbers: list[sa.BindParameter[int]] = [sa.bindparam(f"n{n}") for n in range(count)]
    stmt = sa.select(fences.c.number, fences.c.refused).where(fences.c.number.in_(numbers))
    return str(stmt.with_for_update(read=True).compile(dialect=dialect_))


def numbers(ids: Iterable[bytes]) -> list[int]:
    return sorted({group_number(i) for i in ids})


# -- a move's side -----------------------------------------------------------------------------


def read(conn: Connection, number: int, *, lock: bool = False) -> str:
    stmt = sa.select(fences.c.refused).where(fences.c.number == number)
    if lock:
        stmt = dialect.for_update(stmt, conn)
    found = conn.execute(stmt).scalar()
    if found is None:
        raise _missing("this", number)
    return str(found)


def refuse(conn: Connection, number: int, buckets: Iterable[int]) -> None:
    """Refuse writes of these buckets here, from this transaction's commit on."""
    _set(conn, number, buckets, REFUSED)


def accept(conn: Connection, number: int, buckets: Iterable[int]) -> None:
    """Take writes of these buckets here again (a bucket moved back to this shard)."""
    _set(conn, number, buckets, "0")


def _set(conn: Connection, number: int, buckets: Iterable[int], mark: str) -> None:
    held = list(read(conn, number, lock=True) or "0" * BUCKETS)
    for bucket in buckets:
        held[bucket] = mark
    text = "".join(held)
    stmt = fences.update().where(fences.c.number == number)
    conn.execute(stmt, {"refused": "" if REFUSED not in text else text})
