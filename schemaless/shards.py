"""ShardMap: which shard holds an entity, or an index row.

Ids and ``shard_on`` values hash into a fixed number of virtual buckets, and a stored, versioned
map (:mod:`schemaless.bucket_map`) says which shard owns each bucket. Keeping the bucket count
fixed means a later move of buckets between servers never rehashes a key; only the map changes.
Each shard is a :class:`~schemaless.shard.Shard`, the one boundary through which every statement
runs.

The map is read at first use, not at ``connect()`` (which stays offline-friendly: a daemon may
start before its servers), from every shard that answers, in parallel, and checked there: maps
that disagree, a shard the map names but the store was not given, or a shard listed under
another name than its own raise :class:`ConfigurationError`. Kinds may be declared into shard
groups, each with its own map, and colocated on a field (:mod:`schemaless.kinds`).

    >>> shards = ShardMap([Shard("s0", engine0), Shard("s1", engine1)])
    >>> shards.for_id(entity_id)           # the shard holding that entity
    >>> shards.for_value(7)                # the shard holding index rows whose shard_on is 7
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import bucket_map, ids
from .bucket_map import BUCKETS, DEFAULT_GROUP, BucketMap, Stored
from .errors import ConfigurationError, InvalidId, SchemalessError, ShardUnavailable
from .kinds import Kind
from .kinds import row as kind_row
from .shard import Shard
from .tables import entities, shard_map
from .tables import kinds as kinds_table

logger = logging.getLogger(__name__)

T = TypeVar("T")

_POOL_PREFIX = "schemaless-fan-out"
REFRESH = 1.0  # seconds between checks of the stored map's version (a move's flip)
# How long a read of the stored map that found no move ever prepared (every version 1) lets
# writes skip the fence: a mover arms the fence (version 2) and then waits longer than this,
# plus the writes in flight, before it freezes anything (moves/mover.py).
ARM_TRUST = 2 * REFRESH
_MAX_POOL = 16


class ShardMap:
    """Routes keys to shards through virtual buckets and the stored map of their owners.

    ``groups`` names the shards of each shard group for the first ``migrate`` (later, the
    stored map decides); ``maps`` routes by the given maps instead of the stored ones (tests).
    """

    def __init__(
        self,
        shards: Sequence[Shard],
        *,
        groups: Mapping[str, Sequence[str]] | None = None,
        maps: Mapping[str, BucketMap] | None = None,
    ) -> None:
        if not shards:
            raise ConfigurationError("a store needs at least one shard")
        names = [shard.name for shard in shards]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"shard names must differ: {names}")
        self.shards = list(shards)
        self.engines: list[Engine] = [shard.engine for shard in shards]
        self.positions_by_name = {name: n for n, name in enumerate(names)}
        self.groups = _checked_groups(groups or {}, names)
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._maps: dict[str, BucketMap] = {}
        self._kinds: dict[str, Kind] = {}
        self._routes: list[int] | None = None  # the default group's owner of each bucket
        self._by_number: dict[int, list[int]] = {}
        self._members: dict[str, list[int]] = {}
        self.refresh = REFRESH  # seconds between checks of the stored map's version
        self._check_at = float("inf") if maps is not None else 0.0
        self._unfenced_until = 0.0  # monotonic time until which writes may skip the fence
        if maps is not None:
            self._install(maps, {})

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[Shard]:
        return iter(self.shards)

    def __getitem__(self, shard: int) -> Shard:
        return self.shards[shard]

    # -- routing (the hot paths: a list lookup by bucket) ------------------------------------

    def shard_of_bucket(self, bucket: int, group: str = DEFAULT_GROUP) -> int:
        self._ensure()
        return self._by_number[self._maps[group].number][bucket]

    def shard_for_id(self, id_bytes: bytes) -> int:
        # uuid4 bytes are random already; their first two bytes make an even bucket. Our
        # version-8 ids name their group in the top four bits (bucket_map.placed_id).
        routes = self._fresh()
        if id_bytes[6] >> 4 == 8:
            routes = self._group_routes(id_bytes)
        return routes[int.from_bytes(id_bytes[:2], "big") % BUCKETS]

    def shard_for_value(self, value: Any, kind: str | None = None) -> int:
        """The shard of index rows whose shard_on value is ``value``, for an index of ``kind``."""
        routes = self._fresh()
        if len(self.engines) == 1:  # a backfill asks once per index row: nothing to hash
            return 0
        if kind is not None:
            routes = self._by_number[self._maps[self.kind(kind).group].number]
        return routes[zlib.crc32(_value_key(value)) % BUCKETS]

    def for_id(self, id_bytes: bytes) -> Shard:
        return self.shards[self.shard_for_id(id_bytes)]

    def for_value(self, value: Any, kind: str | None = None) -> Shard:
        return self.shards[self.shard_for_value(value, kind)]

    def positions(self, kind: str | None = None) -> list[int]:
        """The shards that own buckets of ``kind``'s group (default: the default group's)."""
        self._ensure()
        group = DEFAULT_GROUP if kind is None else self.kind(kind).group
        return self._members[group]

    def group_by_id(self, items: Iterable[T], key: Any) -> dict[int, list[T]]:
        """Split items by the shard of the id that ``key(item)`` gives, keeping their order."""
        self._ensure()
        if len(self.engines) == 1:  # the common case, on hot paths: nothing to hash
            listed = list(items)
            return {0: listed} if listed else {}
        groups: dict[int, list[T]] = {}
        for item in items:
            groups.setdefault(self.shard_for_id(key(item)), []).append(item)
        return groups

    # -- kinds and ids -------------------------------------------------------------------------

    def kind(self, name: str) -> Kind:
        """The kind as declared, else an undeclared kind of the default group.

        A kind this process has not met is looked up once in the stored kinds, so a kind
        declared by another process after this one started is placed right.
        """
        found = self._kinds.get(name)
        if found is None:
            self._ensure()
            stored = self._read_kinds()
            with self._lock:
                self._kinds.update(stored)
                found = self._kinds.setdefault(name, Kind(name, DEFAULT_GROUP))
        return found

    def new_id(self, kind: str, body: Mapping[str, Any]) -> uuid.UUID:
        """A new id for an entity of ``kind``: in its group, and in the bucket of its
        ``colocate_on`` value when it has one (a body lacking it gets a random bucket)."""
        declared = self.kind(kind)
        if declared.group == DEFAULT_GROUP and declared.colocate_on is None:
            return ids.new_id()
        bucket = None
        if declared.colocate_on is not None:
            value = body.get(declared.colocate_on)
            if value is not None and not isinstance(value, (list, tuple, dict)):
                bucket = zlib.crc32(_value_key(value)) % BUCKETS
        return bucket_map.placed_id(self._maps[declared.group].number, bucket)

    def check_id(self, kind: str, id_bytes: bytes) -> None:
        """An id given for ``kind`` must be in the kind's group, where reads will look."""
        self._ensure()
        group = self.kind(kind).group
        if bucket_map.group_number(id_bytes) != self._maps[group].number:
            raise InvalidId(
                f"id {uuid.UUID(bytes=id_bytes)} is not in shard group {group!r} of kind "
                f"{kind!r}: let put() mint the ids of kinds in a group"
            )

    def define(self, kind: Kind) -> Kind:
        """Store a kind's declaration on every shard; the same one again changes nothing."""
        self._ensure()
        if kind.group not in self._maps:
            raise ConfigurationError(f"no shard group {kind.group!r}: known {sorted(self._maps)}")
        stored = self._read_all(required=True)
        held = bucket_map.all_kinds(stored.values()).get(kind.name)
        if held is not None and held != kind:
            raise ConfigurationError(f"kind {kind.name!r} is declared already as {held}")
        if held is None and kind.group != DEFAULT_GROUP and self._has_entities(kind.name):
            raise ConfigurationError(
                f"kind {kind.name!r} has entities in the default group already: "
                f"it cannot be placed in group {kind.group!r}"
            )
        for shard in self.shards:
            if kind.name not in stored[shard.name].kinds:
                with shard.begin() as conn:
                    conn.execute(kinds_table.insert(), kind_row(kind))
        with self._lock:
            self._kinds[kind.name] = kind
        return kind

    # -- the stored map --------------------------------------------------------------------

    def maps(self) -> dict[str, BucketMap]:
        """Every group's map, as read (and checked) at first use."""
        self._ensure()
        return dict(self._maps)

    def install(self) -> None:
        """Write the map where it is absent (``migrate``), then route by it.

        Every shard must answer: a first map written while one was away could disagree with
        the one it already holds.
        """
        started = time.monotonic()
        stored = self._read_all(required=True)
        names = [shard.name for shard in self.shards]
        maps = bucket_map.planned(bucket_map.agreed(stored), names, self.groups)
        bucket_map.check_listed(maps, names)
        kinds = bucket_map.all_kinds(stored.values())
        for shard in self.shards:
            with shard.begin() as conn:
                bucket_map.write(conn, shard.name, stored[shard.name], maps)
                bucket_map.copy_kinds(conn, stored[shard.name], kinds)
        with self._lock:
            self._install(maps, kinds)
        self._trust([m.version for m in maps.values()], started)

    def _ensure(self) -> None:
        self._fresh()

    def reload(self) -> None:
        """Read the stored maps again, from every shard that answers, and route by the newest.

        A write that a shard refused (its bucket moved: ``BucketMoved``) calls this, and so
        does the version check that every process makes at most every ``REFRESH`` seconds.
        """
        started = time.monotonic()
        stored = self._read_all(required=False)
        maps = bucket_map.agreed(stored)
        with self._lock:
            self._install(maps, bucket_map.all_kinds(stored.values()))
            self._check_at = time.monotonic() + self.refresh
        self._trust([m.version for m in maps.values()], started)

    def fenced(self) -> bool:
        """Whether a write must read its shard's fence (fence.py) in its transaction.

        Only once a move was ever prepared: a store whose every map is still at version 1 was
        never armed, and a read of the stored map that said so, at most ``ARM_TRUST`` seconds
        ago, lets a write skip the fence's cost (a statement's worth of a put). Past that, or
        with the read failed, writes are fenced: the safe side.
        """
        return time.monotonic() >= self._unfenced_until

    def _trust(self, versions: Iterable[int], started: float) -> None:
        armed = any(version > 1 for version in versions)
        self._unfenced_until = 0.0 if armed else started + ARM_TRUST

    def _fresh(self) -> list[int]:
        """The default group's routes, checked against the stored map's version at most every
        ``REFRESH`` seconds: a process that neither writes nor was refused (a reader, an indexer)
        still follows a move's flip within that time. One small read of one shard."""
        routes = self._routes
        if routes is None:
            return self._load()
        if time.monotonic() < self._check_at:
            return routes
        self._check_at = time.monotonic() + self.refresh  # one thread checks; the others route on
        try:
            if self._stale():
                self.reload()
        except SchemalessError as exc:  # no shard answers now: route by what we hold
            logger.debug("bucket map: version check failed: %s", exc)
        return self._routes or routes

    def _stale(self) -> bool:
        """Whether any shard holds a newer map than this process routes by."""
        stmt = sa.select(shard_map.c.shard_group, shard_map.c.version)
        held: dict[str, int] = {}
        started = time.monotonic()
        for position, shard in enumerate(self.shards):
            try:
                with shard.read() as conn:
                    held = {group: version for group, version in conn.execute(stmt)}
                break
            except ShardUnavailable:
                if position + 1 == len(self.shards):
                    raise
        self._trust(held.values(), started)
        return any(held.get(g, 0) > m.version for g, m in self._maps.items())

    def _load(self) -> list[int]:
        """Read the maps and kinds from every shard that answers, check, and route by them."""
        with self._lock:
            if self._routes is not None:
                return self._routes
        started = time.monotonic()
        stored = self._read_all(required=False)
        maps = bucket_map.agreed(stored)
        if DEFAULT_GROUP not in maps:
            raise ConfigurationError("no bucket map is stored: run `schemaless migrate`")
        with self._lock:
            if self._routes is None:
                self._install(maps, bucket_map.all_kinds(stored.values()))
            assert self._routes is not None
        self._trust([m.version for m in maps.values()], started)
        return self._routes

    def _install(self, maps: Mapping[str, BucketMap], kinds: Mapping[str, Kind]) -> None:
        bucket_map.check_listed(maps, self.positions_by_name)
        missing = [group for group in self.groups if group not in maps]
        if missing:
            raise ConfigurationError(f"no stored map of group(s) {missing}: run migrate")
        by_name = self.positions_by_name
        routes = {m.number: [by_name[owner] for owner in m.owners] for m in maps.values()}
        self._members = {g: sorted({by_name[n] for n in m.shards}) for g, m in maps.items()}
        self._maps, self._by_number = dict(maps), routes
        self._kinds.update(kinds)
        self._routes = routes[maps[DEFAULT_GROUP].number]  # last: it says "loaded"
        self._check_at = max(self._check_at, time.monotonic() + self.refresh)

    def _group_routes(self, id_bytes: bytes) -> list[int]:
        routes = self._by_number.get(id_bytes[0] >> 4)
        if routes is None:
            raise InvalidId(f"id {uuid.UUID(bytes=id_bytes)} names no known shard group")
        return routes

    def _read_all(self, *, required: bool) -> dict[str, Stored]:
        """Each shard's copy of the placement, read in parallel, by shard name.

        Not ``required``, a shard that does not answer is left out (logged), unless none does.
        """

        def read(position: int) -> Stored | ShardUnavailable:
            try:
                with self.shards[position].read() as conn:
                    return bucket_map.read(conn)
            except ShardUnavailable as exc:
                if required:
                    raise
                return exc

        found = self.fan_out(read, range(len(self.shards)))
        answered: dict[str, Stored] = {}
        for shard, result in zip(self.shards, found, strict=True):
            if isinstance(result, Stored):
                answered[shard.name] = result
            else:
                logger.warning("bucket map: shard %s did not answer, read the others", shard.name)
        if not answered:
            raise next(r for r in found if isinstance(r, ShardUnavailable))
        return answered

    def _read_kinds(self) -> dict[str, Kind]:
        """The stored kinds, from the first shard that answers."""
        from .kinds import read

        for position, shard in enumerate(self.shards):
            try:
                with shard.read() as conn:
                    return read(conn)
            except ShardUnavailable:
                if position + 1 == len(self.shards):
                    raise
        raise AssertionError("unreachable")

    def _has_entities(self, kind: str) -> bool:
        stmt = sa.select(entities.c.added_id).where(entities.c.kind == kind).limit(1)
        for shard in self.shards:
            with shard.read() as conn:
                if conn.execute(stmt).first() is not None:
                    return True
        return False

    # -- fanning out -----------------------------------------------------------------------

    def fan_out(self, work: Callable[[int], T], positions: Iterable[int]) -> list[T]:
        """``work(position)`` on each of those shards at once, on the store's own small pool;
        the results in order. The first error is raised: no answer from a subset.

        Work already on the pool runs its own fan-outs inline, so it can never wait for a
        thread that waits for it.
        """
        listed = list(positions)
        if (
            len(listed) <= 1
            or threading.current_thread().name.startswith(_POOL_PREFIX)
            or any(self.shards[p].thread_bound for p in listed)
        ):
            return [work(position) for position in listed]
        # The first position's work runs on this thread, while the pool runs the others': one
        # hand-off fewer, and this thread waits for one less.
        futures = [self._executor().submit(work, position) for position in listed[1:]]
        first = work(listed[0])
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [first, *[future.result() for future in futures]]

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        max_workers=min(len(self.shards), _MAX_POOL),
                        thread_name_prefix=_POOL_PREFIX,
                    )
        return self._pool

    def dispose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for shard in self.shards:
            shard.dispose()


def _checked_groups(groups: Mapping[str, Sequence[str]], names: list[str]) -> dict[str, list[str]]:
    """The ``groups`` option, each group a known name holding listed shards."""
    checked: dict[str, list[str]] = {}
    for group, members in groups.items():
        ids.check_name(group, "shard group")
        if group == DEFAULT_GROUP:
            raise ConfigurationError("the default group holds the shards no group names")
        listed = [members] if isinstance(members, str) else list(members)
        unknown = [name for name in listed if name not in names]
        if not listed or unknown:
            raise ConfigurationError(f"group {group!r} must name listed shards, not {unknown}")
        checked[group] = listed
    return checked


def value_bucket(value: Any) -> int:
    """The bucket of a ``shard_on`` value (a moved bucket takes these index rows along)."""
    return zlib.crc32(_value_key(value)) % BUCKETS


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
