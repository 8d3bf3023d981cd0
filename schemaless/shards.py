"""ShardMap: which shard holds an entity, or an index row.

Ids and ``shard_on`` values hash into a fixed number of virtual buckets, and contiguous ranges of
buckets map onto the shards. Keeping the bucket count fixed means a later move of buckets between
servers never rehashes a key; only the bucket-to-shard table changes. Each shard is a
:class:`~schemaless.shard.Shard`, the one boundary through which every statement runs.

    >>> shards = ShardMap([Shard("s0", engine0), Shard("s1", engine1)])
    >>> shards.for_id(entity_id)           # the shard holding that entity
    >>> shards.for_value(7)                # the shard holding index rows whose shard_on is 7
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from .errors import ConfigurationError
from .shard import Shard

BUCKETS = 4096

T = TypeVar("T")


class ShardMap:
    """Routes keys to shards through virtual buckets."""

    def __init__(self, shards: Sequence[Shard]) -> None:
        if not shards:
            raise ConfigurationError("a store needs at least one shard")
        names = [shard.name for shard in shards]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"shard names must differ: {names}")
        self.shards = list(shards)
        self.engines: list[Engine] = [shard.engine for shard in shards]

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[Shard]:
        return iter(self.shards)

    def __getitem__(self, shard: int) -> Shard:
        return self.shards[shard]

    def shard_of_bucket(self, bucket: int) -> int:
        return bucket * len(self.engines) // BUCKETS

    def shard_for_id(self, id_bytes: bytes) -> int:
        # uuid4 bytes are random already; their first two bytes make an even bucket.
        return self.shard_of_bucket(int.from_bytes(id_bytes[:2], "big") % BUCKETS)

    def shard_for_value(self, value: Any) -> int:
        if len(self.engines) == 1:  # a backfill asks once per index row: nothing to hash
            return 0
        return self.shard_of_bucket(zlib.crc32(_value_key(value)) % BUCKETS)

    def for_id(self, id_bytes: bytes) -> Shard:
        return self.shards[self.shard_for_id(id_bytes)]

    def for_value(self, value: Any) -> Shard:
        return self.shards[self.shard_for_value(value)]

    def group_by_id(self, items: Iterable[T], key: Any) -> dict[int, list[T]]:
        """Split items by the shard of the id that ``key(item)`` gives, keeping their order."""
        if len(self.engines) == 1:  # the common case, on hot paths: nothing to hash
            listed = list(items)
            return {0: listed} if listed else {}
        groups: dict[int, list[T]] = {}
        for item in items:
            groups.setdefault(self.shard_for_id(key(item)), []).append(item)
        return groups

    def dispose(self) -> None:
        for shard in self.shards:
            shard.dispose()


def _value_key(value: Any) -> bytes:
    """A stable byte form of a shard_on value; equal index values give equal keys."""
    if isinstance(value, bool):
        return b"b1" if value else b"b0"
    if isinstance(value, (bytes, bytearray)):
        return b"y" + bytes(value)
    if isinstance(value, uuid.UUID):
        return b"u" + value.bytes
    if isinstance(value, dt.datetime):
        return b"t" + value.isoformat().encode()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 7.0 and 7 are the same index value
    return repr(value).encode()
