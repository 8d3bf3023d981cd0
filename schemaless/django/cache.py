"""The store's read-through cache under Django: a ``CACHES`` alias, as Django projects name one.

``OPTIONS={"CACHE": "entities"}`` on a schemaless alias puts :mod:`schemaless.cache` in front of
its ``get(pk=)`` and ``in_bulk`` reads, on the server of ``CACHES["entities"]``::

    CACHES = {"entities": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                           "LOCATION": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "shop"}}

The entries are the store's own (leases, tombstones, version-checked fills), not Django's cache
API: that is what keeps a read after a write from seeing the older version. So the alias must be
Django's ``RedisCache`` or ``PyMemcacheCache`` with one ``LOCATION``; its ``KEY_PREFIX`` prefixes
the keys and a positive ``TIMEOUT`` becomes the entries' ttl. One cache client per process and
alias is shared by every thread's store.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..cache import Cache, open_cache

REDIS = "django.core.cache.backends.redis.RedisCache"
MEMCACHED = "django.core.cache.backends.memcached.PyMemcacheCache"

_opened: dict[str, Cache] = {}  # cache URL -> the process's client
_lock = threading.Lock()


def cache_for(alias: str, name: str) -> Cache:
    """The cache of ``CACHES[name]``, for the store of the database alias ``alias``."""
    url = cache_url(alias, name)
    with _lock:
        if url not in _opened:
            cache = open_cache(url)
            assert cache is not None
            _opened[url] = cache
        return _opened[url]


def cache_url(alias: str, name: str) -> str:
    """The :func:`schemaless.cache.open_cache` URL of ``CACHES[name]``; ImproperlyConfigured
    for a name not in CACHES or a backend the store's cache cannot use."""
    where = f"DATABASES[{alias!r}]['OPTIONS']['CACHE']"
    entry: dict[str, Any] | None = settings.CACHES.get(name)
    if entry is None:
        raise ImproperlyConfigured(f"{where} is {name!r}, which CACHES does not name")
    backend = entry.get("BACKEND")
    location = entry.get("LOCATION")
    locations = [location] if isinstance(location, str) else list(location or ())
    if backend not in (REDIS, MEMCACHED) or len(locations) != 1:
        raise ImproperlyConfigured(
            f"{where}: CACHES[{name!r}] must be Django's RedisCache or PyMemcacheCache with "
            f"one LOCATION (the store fills its entries with a Redis script or memcached's "
            f"cas), not {backend} at {locations}"
        )
    query = {"prefix": _prefix(entry.get("KEY_PREFIX"))}
    timeout = entry.get("TIMEOUT")  # Django's default, 300 s, is ours too
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        query["ttl"] = str(timeout)
    server = str(locations[0])
    if backend == MEMCACHED:
        if server.startswith("unix:"):
            raise ImproperlyConfigured(f"{where}: the store's memcached cache takes host:port")
        server = f"memcached://{server}"
    joiner = "&" if "?" in server else "?"
    return f"{server}{joiner}{urlencode(query)}"


def _prefix(key_prefix: object) -> str:
    return f"{key_prefix}:schemaless:" if key_prefix else "schemaless:"
