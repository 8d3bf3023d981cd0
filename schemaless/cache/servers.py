"""The cache on Redis (redis-py) and on memcached (pymemcache): the wire, nothing more."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .base import Cache, CacheOptions

# The lease goes in only where the key holds nothing, in the same atomic step as the read.
_REDIS_LOOKUP = """
local found = {}
for i, key in ipairs(KEYS) do
    local value = redis.call('GET', key)
    if not value then
        value = ARGV[i]
        redis.call('SET', key, value, 'PX', ARGV[#KEYS + 1])
    end
    found[i] = value
end
return found
"""

# A fill replaces exactly the bytes its reader found (a lease, a tombstone, a damaged entry);
# those carry a nonce, so any write since (a tombstone, another fill) makes it lose.
_REDIS_FILL = """
local stored, n = 0, #KEYS
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[i] then
        redis.call('SET', key, ARGV[n + i], 'PX', ARGV[2 * n + 1])
        stored = stored + 1
    end
end
return stored
"""


class RedisCache(Cache):
    """The cache on a Redis server (redis-py), one round trip per lookup, fill or mark."""

    def __init__(self, url: str, options: CacheOptions | None = None) -> None:
        super().__init__(options)
        redis, Retry, NoBackoff = _import_redis()
        self.errors = (redis.RedisError, OSError)
        timeout = self.options.timeout
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a retry would double the wait on a silent server
        )
        self._lookup_script = self.client.register_script(_REDIS_LOOKUP)
        self._fill_script = self.client.register_script(_REDIS_FILL)

    def close(self) -> None:
        super().close()
        self.client.close()

    def _lookup(self, names: list[str]) -> list[tuple[bytes | None, Any]]:
        # A plain GET first: a hit, the common case, then costs no script and no lease.
        found = self.client.mget(names) if len(names) > 1 else [self.client.get(names[0])]
        absent = [name for name, value in zip(names, found, strict=True) if value is None]
        if absent:
            leases = [self._lease() for _ in absent]
            args = [*leases, _ms(self.options.lease_ttl)]
            leased = dict(zip(absent, self._lookup_script(keys=absent, args=args), strict=True))
            found = [leased[n] if v is None else v for n, v in zip(names, found, strict=True)]
        return [(value, value) for value in found]

    def _fill(self, fills: list[tuple[str, Any, bytes]]) -> int:
        names = [name for name, _, _ in fills]
        args = [token for _, token, _ in fills] + [value for _, _, value in fills]
        return int(self._fill_script(keys=names, args=[*args, _ms(self.options.ttl)]))

    def _mark(self, tombstones: dict[str, bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, value in tombstones.items():
            pipe.set(name, value, px=_ms(self.options.ttl))
        pipe.execute()


class MemcachedCache(Cache):
    """The cache on a memcached server (pymemcache): ``gets`` and ``cas`` for the fills."""

    def __init__(self, host: str, port: int, options: CacheOptions | None = None) -> None:
        super().__init__(options)
        try:
            from pymemcache.client.base import PooledClient
            from pymemcache.exceptions import MemcacheError
        except ImportError as exc:
            raise ConfigurationError(
                "a memcached:// cache needs pymemcache: pip install 'schemaless[cache]'"
            ) from exc
        self.errors = (MemcacheError, OSError)
        self.client = PooledClient(
            (host, port),
            connect_timeout=self.options.timeout,
            timeout=self.options.timeout,
            no_delay=True,
            default_noreply=False,
        )

    def close(self) -> None:
        super().close()
        self.client.close()

    def _lookup(self, names: list[str]) -> list[tuple[bytes | None, Any]]:
        found = self.client.gets_many(names)
        absent = [name for name in names if name not in found]
        if absent:
            for name in absent:  # add: only where nothing is, as another reader may have been
                self.client.add(name, self._lease(), expire=self._seconds(self.options.lease_ttl))
            found.update(self.client.gets_many(absent))
        return [found.get(name, (None, None)) for name in names]

    def _fill(self, fills: list[tuple[str, Any, bytes]]) -> int:
        expire = self._seconds(self.options.ttl)
        return sum(bool(self.client.cas(n, v, token, expire=expire)) for n, token, v in fills)

    def _mark(self, tombstones: dict[str, bytes]) -> None:
        self.client.set_many(tombstones, expire=self._seconds(self.options.ttl))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _import_redis() -> tuple[Any, Any, Any]:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ConfigurationError(
            "a redis:// cache needs redis-py: pip install 'schemaless[cache]'"
        ) from exc
    return redis, Retry, NoBackoff
