"""The cache's protocol, whatever the server: entries, leases, tombstones, counting, outages.

See :mod:`schemaless.cache` for why the protocol is safe; a subclass of :class:`Cache` speaks
to one kind of server (``servers.py``).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Fetch = Callable[[list[bytes]], Sequence[Any]]  # ids -> rows (id, kind, version, blob)

LIVE, TOMBSTONE, LEASE = 1, 2, 3
_MAGIC, _FORMAT = b"SL", 1
_HEAD = struct.Struct(">2sBBQ8sB")  # magic, format, state, version, nonce, length of the kind
_CRC = struct.Struct(">I")
_LOG_EVERY = 60.0  # seconds between warnings about the same outage
_MAX_PENDING = 100_000  # invalidations kept for delivery; past it the ttl is the bound


@dataclass(frozen=True)
class CacheOptions:
    """How the cache behaves; each can also be set in the URL's query (``?ttl=60``).

    ``ttl`` bounds the life of every entry, and so how long an entry whose invalidation was lost
    can be served; ``lease_ttl`` must outlast a database read; ``timeout`` bounds every call to
    the cache server, and after a failure the cache is skipped for ``retry_after`` seconds.
    Entries over ``max_entry_size`` bytes are not cached (memcached refuses items over 1 MB).
    """

    prefix: str = "schemaless:"
    ttl: float = 300.0
    lease_ttl: float = 10.0
    timeout: float = 0.1
    retry_after: float = 1.0
    max_entry_size: int = 1_000_000


@dataclass(frozen=True)
class CacheStats:
    """Counts since the cache was opened (a snapshot)."""

    hits: int = 0  # entities served from the cache
    misses: int = 0  # entities looked up and read from the database
    fills: int = 0  # entries stored after a database read
    lost_fills: int = 0  # fills refused: a write (or another reader) changed the entry meanwhile
    invalidations: int = 0  # entities invalidated after a write
    corrupt: int = 0  # entries that did not parse, read as misses
    errors: int = 0  # calls to the cache that failed or timed out
    skipped: int = 0  # entities read without asking the cache, while it was down
    pending: int = 0  # invalidations not yet delivered


class Entry(NamedTuple):
    """One value stored under a key."""

    state: int  # LIVE, TOMBSTONE or LEASE
    version: int
    kind: str = ""
    blob: bytes = b""

    def pack(self) -> bytes:
        kind = self.kind.encode()
        head = _HEAD.pack(_MAGIC, _FORMAT, self.state, self.version, os.urandom(8), len(kind))
        body = b"".join((head, kind, self.blob))
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def unpack(cls, value: bytes) -> Entry | None:
        """The entry, or None for bytes that are not one (damaged, or written by another)."""
        body = value[: -_CRC.size]
        if len(body) < _HEAD.size or _CRC.unpack(value[-_CRC.size :])[0] != zlib.crc32(body):
            return None
        magic, form, state, version, _, length = _HEAD.unpack_from(body)
        if magic != _MAGIC or form != _FORMAT or state not in (LIVE, TOMBSTONE, LEASE):
            return None
        try:
            kind = body[_HEAD.size : _HEAD.size + length].decode()
        except UnicodeDecodeError:
            return None
        return cls(state, version, kind, body[_HEAD.size + length :])


class Ticket(NamedTuple):
    """What a reader found before its database read: the token its fill must present, and
    the lowest version it may fill (a tombstone's)."""

    token: Any
    floor: int


class Cache:
    """The protocol (entries, leases, tombstones), the counting and the skipping while down;
    a subclass speaks to one kind of server through ``_lookup``, ``_fill`` and ``_mark``."""

    errors: tuple[type[BaseException], ...] = (OSError,)  # what a failing server raises

    def __init__(self, options: CacheOptions | None = None) -> None:
        self.options = options or CacheOptions()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._pending: dict[bytes, int] = {}  # id -> version of an undelivered invalidation
        self._down_until = 0.0
        self._warned = -math.inf

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts, pending=len(self._pending))

    def read_through(self, keys: list[bytes], fetch: Fetch, *, fill: bool = True) -> Sequence[Any]:
        """The rows (id, kind, version, blob) of ``keys``: the cache's where it holds them, the
        rest from ``fetch`` (the database), filling the cache with those.

        ``fill=False`` for a ``fetch`` that may lag behind committed writes (a replica): its
        rows are returned but never cached, as a lease taken before it proves nothing about it.
        """
        asked = self._askable(keys)
        rows: list[Any] = []
        tickets: dict[bytes, Ticket] = {}
        if asked:
            found = self._call("lookup", lambda: self._lookup([self._name(k) for k in asked]))
            for key, (value, token) in zip(asked, found or (), strict=False):
                self._sort(key, value, token, rows, tickets)
        self._count(hits=len(rows), misses=len(asked) - len(rows))
        if len(rows) < len(keys):
            hit = {row[0] for row in rows}
            fetched = fetch([key for key in keys if key not in hit])
            if fill:
                self._refill(tickets, fetched)
            rows.extend(fetched)
        return rows

    def invalidate(self, changes: Iterable[tuple[bytes, int]]) -> None:
        """Mark the entities' entries stale, once their write (id, new version) committed.

        Never raises: an invalidation the cache did not take is kept and delivered later.
        """
        marks = dict(changes)
        self._count(invalidations=len(marks))
        if self._pending:
            self._deliver()
        if not self._is_down() and self._call("invalidate", lambda: self._mark_all(marks)):
            return
        self._keep(marks)

    def close(self) -> None:
        """Close the connections to the server (pending invalidations are attempted first)."""
        if self._pending:
            self._deliver()

    # -- the protocol ---------------------------------------------------------------------------

    def _sort(
        self,
        key: bytes,
        value: bytes | None,
        token: Any,
        rows: list[Any],
        tickets: dict[bytes, Ticket],
    ) -> None:
        """File what the lookup found under ``key``: a hit, or a ticket for the fill."""
        if value is None:
            return  # nothing there and no lease placed: read it, fill nothing
        entry = Entry.unpack(value)
        if entry is None:
            self._count(corrupt=1)
            tickets[key] = Ticket(token, 0)
        elif entry.state == LIVE:
            rows.append((key, entry.kind, entry.version, entry.blob))
        else:
            tickets[key] = Ticket(token, entry.version if entry.state == TOMBSTONE else 0)

    def _refill(self, tickets: dict[bytes, Ticket], fetched: Sequence[Any]) -> None:
        fills = []
        for row in fetched:
            key = bytes(row[0])
            ticket = tickets.get(key)
            if ticket is None or row[2] < ticket.floor:
                continue
            value = Entry(LIVE, row[2], row[1], bytes(row[3])).pack()
            if len(value) <= self.options.max_entry_size:
                fills.append((self._name(key), ticket.token, value))
        if fills:
            stored = self._call("fill", lambda: self._fill(fills))
            if stored is not None:
                self._count(fills=stored, lost_fills=len(fills) - stored)

    def _mark_all(self, marks: dict[bytes, int]) -> bool:
        self._mark({self._name(k): Entry(TOMBSTONE, v).pack() for k, v in marks.items()})
        return True

    def _lease(self) -> bytes:
        return Entry(LEASE, 0).pack()

    def _name(self, key: bytes) -> str:
        return self.options.prefix + key.hex()

    # -- outages --------------------------------------------------------------------------------

    def _askable(self, keys: list[bytes]) -> list[bytes]:
        """The keys worth asking the cache for: none while it is down, none of this process's
        undelivered invalidations (the cache may still hold what they would have removed)."""
        if self._pending:
            self._deliver()
        if self._is_down():
            self._count(skipped=len(keys))
            return []
        pending = self._pending
        return [key for key in keys if key not in pending] if pending else keys

    def _deliver(self) -> None:
        """Send the invalidations kept while the cache was down, if it is back."""
        if self._is_down():
            return
        with self._lock:
            batch = dict(self._pending)
        if not batch:
            return
        if self._call("invalidate", lambda: self._mark_all(batch)):
            with self._lock:
                for key, version in batch.items():
                    if self._pending.get(key) == version:
                        del self._pending[key]

    def _keep(self, marks: dict[bytes, int]) -> None:
        with self._lock:
            for key, version in marks.items():
                if len(self._pending) < _MAX_PENDING or key in self._pending:
                    self._pending[key] = max(version, self._pending.get(key, 0))

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _call(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()``, or None when the server failed: counted, logged, and skipped a while."""
        try:
            return call()
        except self.errors as exc:
            self._failed(what, exc)
            return None

    def _failed(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts["errors"] += 1
            self._down_until = now + self.options.retry_after
            loud = now - self._warned >= _LOG_EVERY
            if loud:
                self._warned = now
        log = logger.warning if loud else logger.debug
        log(
            "cache %s failed (%s: %s); reading the database, cache skipped for %.1f s",
            what,
            type(exc).__name__,
            exc,
            self.options.retry_after,
        )

    def _count(self, **counts: int) -> None:
        with self._lock:
            self._counts.update(counts)

    # -- the wire, per server -------------------------------------------------------------------

    def _lookup(self, names: list[str]) -> list[tuple[bytes | None, Any]]:
        """(value, token) per name, placing a lease where the key held nothing."""
        raise NotImplementedError

    def _fill(self, fills: list[tuple[str, Any, bytes]]) -> int:
        """Store each value whose key still holds what its token says; how many were stored."""
        raise NotImplementedError

    def _mark(self, tombstones: dict[str, bytes]) -> None:
        """Overwrite the keys with tombstones."""
        raise NotImplementedError

    def _seconds(self, seconds: float) -> int:
        return max(1, math.ceil(seconds))
