"""BucketMap: the stored, versioned table of which shard owns each of the 4096 buckets.

The map is data (DESIGN 6): every shard holds a copy of every group's map in
``schemaless_shard_map``, and its own name in ``schemaless_shard``. ``migrate`` writes them when
they are absent (the first map gives contiguous ranges of buckets to the shards in the order
they were listed, as the computed map of earlier versions did, so existing stores keep their
placement), and copies them to a shard just added. Routing reads them once per process
(:class:`~schemaless.shards.ShardMap`), from every shard that answers, and refuses to route
when they disagree, or when the shards listed lack one the map names, or when a shard is listed
under a name other than its own: writing by a guessed map would put data where no reader looks.

Ids carry their placement in their first two bytes (DESIGN 6, "Colocation"): the low 12 bits
are the bucket, as ``int.from_bytes(id[:2]) % 4096`` reads it. An id of a kind in a group
other than the default one is a version-8 UUID (RFC 9562: a layout of our own) whose top four
bits name the group's number; any other id (uuid4, or one a user made) is in the default
group.

    >>> m = BucketMap.initial("default", 0, ["s0", "s1"])
    >>> m.encoded()
    's0:0-2047,s1:2048-4095'
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .dialect import utcnow
from .errors import ConfigurationError
from .kinds import Kind
from .kinds import read as read_kinds
from .kinds import row as kind_row
from .tables import kinds as kinds_table
from .tables import shard_identity, shard_map

logger = logging.getLogger(__name__)

BUCKETS = 4096
DEFAULT_GROUP = "default"
MAX_GROUPS = 16  # the top four bits of an id's first two bytes
_GROUP_ID_VERSION = 8


@dataclasses.dataclass(frozen=True)
class BucketMap:
    """One group's map: its number, its version, and the owner of each bucket, by name."""

    group: str
    number: int
    version: int
    owners: tuple[str, ...]
    # Moves of this group's buckets under way (``Store.shard_map`` fills it; schemaless.moves)
    moving: tuple[Any, ...] = dataclasses.field(default=(), compare=False)

    @classmethod
    def initial(cls, group: str, number: int, shards: Sequence[str]) -> BucketMap:
        """Contiguous ranges of buckets over ``shards`` in order: version 1."""
        if not shards:
            raise ConfigurationError(f"shard group {group!r} needs at least one shard")
        owners = tuple(shards[bucket * len(shards) // BUCKETS] for bucket in range(BUCKETS))
        return cls(group, number, 1, owners)

    @classmethod
    def decoded(cls, group: str, number: int, version: int, text: str) -> BucketMap:
        """The map that :meth:`encoded` wrote; a malformed one is a ConfigurationError."""
        owners: list[str | None] = [None] * BUCKETS
        try:
            for part in text.split(","):
                name, _, span = part.partition(":")
                first, _, last = span.partition("-")
                for bucket in range(int(first), int(last) + 1):
                    owners[bucket] = name
        except (ValueError, IndexError) as exc:
            raise ConfigurationError(f"the stored map of group {group!r} is malformed") from exc
        if None in owners:
            raise ConfigurationError(f"the stored map of group {group!r} leaves buckets unowned")
        return cls(group, number, version, tuple(o for o in owners if o is not None))

    def encoded(self) -> str:
        """Runs of buckets with one owner: ``name:first-last``, comma-separated."""
        runs: list[str] = []
        start = 0
        for bucket in range(1, BUCKETS + 1):
            if bucket == BUCKETS or self.owners[bucket] != self.owners[start]:
                runs.append(f"{self.owners[start]}:{start}-{bucket - 1}")
                start = bucket
        return ",".join(runs)

    @property
    def shards(self) -> list[str]:
        """The shards owning buckets, in the order of their first bucket."""
        return list(dict.fromkeys(self.owners))

    def same_as(self, other: BucketMap) -> bool:
        return (self.number, self.owners) == (other.number, other.owners)


@dataclasses.dataclass(frozen=True)
class Stored:
    """What one shard holds of the placement: its own name, the maps, the kinds."""

    name: str | None
    maps: dict[str, BucketMap]
    kinds: dict[str, Kind]


def read(conn: Connection) -> Stored:
    """One shard's copy of the placement."""
    name = conn.execute(sa.select(shard_identity.c.name)).scalars().first()
    maps = {
        row.shard_group: BucketMap.decoded(row.shard_group, row.number, row.version, row.owners)
        for row in conn.execute(sa.select(shard_map))
    }
    return Stored(name, maps, read_kinds(conn))


def agreed(stored: Mapping[str, Stored]) -> dict[str, BucketMap]:
    """The maps that the shards' copies agree on, newest version of each group.

    Two copies of one version that differ, or two groups under one number, mean shards of two
    stores (or a map edited by hand): ConfigurationError. Copies of different versions are a
    move's flip under way, which writes the new version shard by shard: the newest wins.
    """
    for name, each in stored.items():
        if each.name is not None and each.name != name:
            raise ConfigurationError(
                f"shard {name!r} is shard {each.name!r} of the stored map: name the shards as "
                f"they were first migrated (NAME=URL), or list them in that order"
            )
    newest: dict[str, BucketMap] = {}
    for each in stored.values():
        for group, found in each.maps.items():
            held = newest.get(group)
            if held is not None and held.version == found.version and not held.same_as(found):
                raise ConfigurationError(
                    f"the shards hold different bucket maps of group {group!r} at version "
                    f"{found.version}: shards of different stores were listed together"
                )
            if held is None or found.version > held.version:
                newest[group] = found
    numbers = [m.number for m in newest.values()]
    if len(set(numbers)) != len(numbers):
        raise ConfigurationError("the stored maps give two shard groups one number")
    return newest


def check_listed(maps: Mapping[str, BucketMap], listed: Iterable[str]) -> None:
    """Every shard a map names must be listed; a listed shard without buckets is fine."""
    names = set(listed)
    for group, each in maps.items():
        missing = [name for name in each.shards if name not in names]
        if missing:
            raise ConfigurationError(
                f"the bucket map of group {group!r} names shard(s) {', '.join(missing)}, "
                f"which the store was not given (listed: {', '.join(sorted(names))})"
            )


def planned(
    maps: Mapping[str, BucketMap], listed: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> dict[str, BucketMap]:
    """The maps after a migrate: the stored ones, plus a first map of each group lacking one.

    The default group's first map spreads over the listed shards that no group names.
    """
    planned = dict(maps)
    for group, names in groups.items():
        unknown = [n for n in names if n not in listed]
        if unknown:
            raise ConfigurationError(f"group {group!r} names unknown shard(s): {unknown}")
    if DEFAULT_GROUP not in planned:
        grouped = {name for names in groups.values() for name in names}
        rest = [name for name in listed if name not in grouped]
        planned[DEFAULT_GROUP] = BucketMap.initial(DEFAULT_GROUP, 0, rest)
    for group, names in groups.items():
        if group not in planned:
            number = max(m.number for m in planned.values()) + 1
            if number >= MAX_GROUPS:
                raise ConfigurationError(f"at most {MAX_GROUPS} shard groups")
            planned[group] = BucketMap.initial(group, number, list(names))
    return planned


def write(conn: Connection, name: str, stored: Stored, maps: Mapping[str, BucketMap]) -> None:
    """Bring one shard's copy up to ``maps``: its name if absent, newer or missing maps."""
    now = utcnow()
    if stored.name is None:
        conn.execute(shard_identity.insert(), {"name": name, "created": now})
    for group, each in maps.items():
        values = {"number": each.number, "version": each.version, "owners": each.encoded()}
        held = stored.maps.get(group)
        if held is None:
            conn.execute(shard_map.insert(), {"shard_group": group, "updated": now, **values})
        elif held.version < each.version:
            where = shard_map.c.shard_group == group
            conn.execute(shard_map.update().where(where), {"updated": now, **values})


def copy_kinds(conn: Connection, stored: Stored, kinds: Mapping[str, Kind]) -> None:
    """Give a shard the kinds the others hold (a shard just added)."""
    missing = [kind for name, kind in kinds.items() if name not in stored.kinds]
    if missing:
        conn.execute(kinds_table.insert(), [kind_row(kind) for kind in missing])


def all_kinds(stored: Iterable[Stored]) -> dict[str, Kind]:
    """The kinds any shard holds (each is written to every shard, the same everywhere)."""
    found: dict[str, Kind] = {}
    for each in stored:
        found.update(each.kinds)
    return found


# -- the placement inside an id ------------------------------------------------------------------


def placed_id(number: int, bucket: int | None) -> uuid.UUID:
    """A new random id in ``bucket`` (None: any) of the group numbered ``number``.

    The default group's ids stay uuid4 (their first two bytes set to the bucket); another
    group's are version 8, the group's number in the top four bits.
    """
    raw = bytearray(secrets.token_bytes(16))
    if bucket is not None or number:
        placement = (number << 12) | (
            bucket if bucket is not None else int.from_bytes(raw[:2], "big") % BUCKETS
        )
        if not number:  # keep four random bits where a group id keeps its number
            placement |= (raw[0] & 0xF0) << 8
        raw[:2] = placement.to_bytes(2, "big")
    version = _GROUP_ID_VERSION if number else 4
    raw[6] = (raw[6] & 0x0F) | (version << 4)
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return uuid.UUID(bytes=bytes(raw))


def group_number(id_bytes: bytes) -> int:
    """The number of the group an id belongs to: 0 unless it is one of our version-8 ids."""
    return id_bytes[0] >> 4 if id_bytes[6] >> 4 == _GROUP_ID_VERSION else 0


def describe(maps: Mapping[str, BucketMap]) -> dict[str, Any]:
    """The maps as JSON-friendly data, for status and logs."""
    return {g: {"version": m.version, "owners": m.encoded()} for g, m in maps.items()}
