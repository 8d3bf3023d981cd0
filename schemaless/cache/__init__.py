"""Cache: an optional read-through cache of entities, on Redis or memcached.

``store.get`` and ``store.get_many`` look entities up in the cache first and read the database
only for what it lacks, filling the cache with what they read; ``put`` and ``delete`` invalidate
the entity's entry once their transaction has committed. The guarantee: a get that starts after a
put (or a delete) returned never sees an older version.

    >>> store = schemaless.connect(url, cache="redis://127.0.0.1:6379/0")
    >>> store = schemaless.connect(url, cache="memcached://127.0.0.1:11211?ttl=60")
    >>> store.cache.stats.hits

How the guarantee holds, whatever the interleaving (the leases of Facebook's memcache):

- A key holds an *entry*: live (the entity's kind, version and blob, in the codec's form), a
  tombstone (left by an invalidation: "version V committed; read the database") or a lease (left
  by a reader that found nothing: "I am reading the database"). Every entry carries a random
  nonce, so no two writes leave the same bytes, and a CRC, so a damaged one reads as a miss.
- A reader that finds anything but a live entry remembers what it found (the bytes on Redis, the
  ``gets`` cas token on memcached), placing a lease first when it found nothing, and only then
  reads the database. Its fill replaces the entry only if the entry is still what it found (a Redis
  script; memcached ``cas``) and only by a version at least the tombstone's.
- An invalidation overwrites the key with a tombstone carrying the new version.

So a fill that raced a write loses: either the write's tombstone landed before the reader looked,
and the reader's database read, which comes later, sees the write; or it landed after, changed
what the reader found, and the fill is refused. An eviction or an expiry can only make a fill
fail, never let a stale one in. Absence is never cached, so new ids need no invalidation.

The cache is never needed for an answer. A call to it that fails or times out (``timeout``,
0.1 s by default) sends the read to the database, is counted in :attr:`Cache.stats` and logged
(at most one warning per minute), and the cache is then skipped at once for ``retry_after``
seconds, so a dead or silent cache costs one timeout per second at most. An invalidation that
fails is kept and delivered before the next use of the cache (meanwhile this process reads those
ids from the database). If the process ends first, other processes may serve that entry until
its ``ttl`` (300 s by default) runs out: that is the staleness bound a cache outage can cause.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from .base import Cache, CacheOptions, CacheStats, Entry
from .servers import MemcachedCache, RedisCache

__all__ = [
    "Cache",
    "CacheOptions",
    "CacheStats",
    "Entry",
    "MemcachedCache",
    "RedisCache",
    "open_cache",
]


def open_cache(cache: str | Cache | None) -> Cache | None:
    """The cache a URL names (``redis://``, ``rediss://``, ``unix://``, ``memcached://``), with
    :class:`CacheOptions` from its query; a :class:`Cache` or None is returned as given."""
    if cache is None or isinstance(cache, Cache):
        return cache
    if not isinstance(cache, str):
        raise ConfigurationError(f"cache must be a URL or a Cache, not {type(cache).__name__}")
    parts = urlsplit(cache)
    query = parse_qsl(parts.query)
    names = {f.name for f in fields(CacheOptions)}
    options = _options({k: v for k, v in query if k in names})
    rest = [(k, v) for k, v in query if k not in names]
    if parts.scheme in ("redis", "rediss", "unix"):
        return RedisCache(urlunsplit(parts._replace(query=urlencode(rest))), options)
    if parts.scheme == "memcached":
        if rest or parts.path.strip("/"):
            raise ConfigurationError(f"memcached cache URL takes no {parts.path or rest}")
        try:
            port = parts.port or 11211
        except ValueError as exc:
            raise ConfigurationError(f"cache URL {cache!r}: {exc}") from exc
        return MemcachedCache(parts.hostname or "127.0.0.1", port, options)
    raise ConfigurationError(f"cache URL must be redis://... or memcached://..., not {cache!r}")


def _options(given: dict[str, str]) -> CacheOptions:
    values: dict[str, Any] = {}
    for name, text in given.items():
        if name == "prefix":
            if not text.isprintable() or " " in text or len(text) > 100:
                raise ConfigurationError(f"cache prefix {text!r} must be printable, no spaces")
            values[name] = text
            continue
        try:
            values[name] = int(text) if name == "max_entry_size" else float(text)
        except ValueError:
            values[name] = math.nan
        if not values[name] > 0:
            raise ConfigurationError(f"cache option {name} must be a positive number: {text!r}")
    return CacheOptions(**values)
