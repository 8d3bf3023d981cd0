"""Which buckets a move takes, and where their rows are: bucket lists, id ranges, rebalancing.

An id's bucket is its first two bytes modulo 4096 (``bucket_map``), so the ids of a set of
buckets lie in ranges of the ``entities.id`` key: for each run of buckets ``a-b`` and each top
nibble the group's ids may have (any of 16 in the default group, the group's number in another),
the ids from ``(nibble, a) + 00..00`` to ``(nibble, b) + ff..ff``. A move reads its entities by
those ranges, in keyset batches, never scanning the rest of the table.

    >>> parse("0-99,200")[:3], encode(parse("0-99,200"))
    ([0, 1, 2], '0-99,200')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..bucket_map import BUCKETS, BucketMap
from ..errors import ConfigurationError
from ..fence import position

Range = tuple[bytes, bytes]  # inclusive bounds of entities.id


def parse(text: str) -> list[int]:
    """Buckets written as ``0-99,200``: sorted, each once; ConfigurationError when malformed."""
    found: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ConfigurationError(f"buckets: expected N or N-M, got {part!r}") from None
        if not 0 <= low <= high < BUCKETS:
            raise ConfigurationError(f"buckets: {part!r} is not within 0-{BUCKETS - 1}")
        found.update(range(low, high + 1))
    return sorted(found)


def runs(buckets: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive buckets as (first, last) pairs."""
    found: list[tuple[int, int]] = []
    for bucket in sorted(set(buckets)):
        if found and found[-1][1] == bucket - 1:
            found[-1] = (found[-1][0], bucket)
        else:
            found.append((bucket, bucket))
    return found


def encode(buckets: Iterable[int]) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in runs(buckets))


def id_ranges(number: int, buckets: Iterable[int]) -> list[Range]:
    """The ranges of ``entities.id`` holding the ids of these buckets of group ``number``,
    sorted and disjoint (they also hold other groups' ids: see :func:`holds`)."""
    nibbles = range(16) if number == 0 else [number]
    found = [
        (_prefix(nibble, a) + bytes(14), _prefix(nibble, b) + b"\xff" * 14)
        for nibble in nibbles
        for a, b in runs(buckets)
    ]
    return sorted(found)


def _prefix(nibble: int, bucket: int) -> bytes:
    return ((nibble << 12) | bucket).to_bytes(2, "big")


def holds(number: int, buckets: set[int], id_bytes: bytes) -> bool:
    """Whether an id is in one of these buckets of group ``number``: routed as the map routes."""
    group, place = position(id_bytes)
    return group == number and place - 1 in buckets


def by_owner(current: BucketMap, buckets: Sequence[int], target: str) -> dict[str, list[int]]:
    """The buckets to move to ``target``, by their owner now (those it owns already left out)."""
    found: dict[str, list[int]] = {}
    for bucket in buckets:
        owner = current.owners[bucket]
        if owner != target:
            found.setdefault(owner, []).append(bucket)
    return found


def rebalance(current: BucketMap, members: Sequence[str]) -> list[tuple[str, str, list[int]]]:
    """Moves (source, target, buckets) that leave every member an even share of the buckets.

    Each shard over its share gives its highest buckets to the shards under theirs, in the
    members' order, so the buckets a shard keeps stay in long runs.
    """
    if not members:
        raise ConfigurationError(f"group {current.group!r} has no shards to balance over")
    even, rest = divmod(BUCKETS, len(members))
    share = {name: even + (n < rest) for n, name in enumerate(members)}
    held: dict[str, list[int]] = {name: [] for name in members}
    for bucket, owner in enumerate(current.owners):
        held.setdefault(owner, []).append(bucket)
    spare: list[tuple[str, int]] = []
    for name, buckets in held.items():
        keep = share.get(name, 0)
        spare += [(name, bucket) for bucket in buckets[keep:]]
    moves: dict[tuple[str, str], list[int]] = {}
    for name in members:
        for _ in range(share[name] - len(held[name])):
            source, bucket = spare.pop()
            moves.setdefault((source, name), []).append(bucket)
    return [(source, target, sorted(b)) for (source, target), b in moves.items()]
