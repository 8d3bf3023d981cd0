"""The store's cache under Django: OPTIONS["CACHE"] names a CACHES alias (Redis, the machine's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import override_settings

from schemaless.django.cache import cache_url
from tests.conftest import REDIS_URL as REDIS
from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")


@pytest.fixture
def store_options(redis_prefix: str) -> Iterator[dict[str, Any]]:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "entities": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": redis_prefix,
        },
    }
    with override_settings(CACHES=caches):
        yield {"INDEXING": "async", "CACHE": "entities"}


def test_a_get_by_pk_is_served_by_the_cache_and_a_save_is_seen_at_once() -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    cache = connections["entities"].store.cache
    assert cache is not None
    for _ in range(2):
        assert Entry.objects.get(pk=entry.pk).title == "a"
    assert (cache.stats.fills, cache.stats.hits) == (1, 1)
    entry.title = "b"
    entry.save()
    assert Entry.objects.get(pk=entry.pk).title == "b"
    assert Entry.objects.in_bulk([entry.pk])[entry.pk].title == "b"
    assert cache.stats.invalidations >= 1


def test_a_caches_alias_maps_to_the_stores_cache_url() -> None:
    memcached = {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache"}
    caches = {
        "r": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "TIMEOUT": 60,
        },
        "m": {**memcached, "LOCATION": "127.0.0.1:11311", "KEY_PREFIX": "shop"},
        "two": {**memcached, "LOCATION": ["127.0.0.1:1", "127.0.0.1:2"]},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    with override_settings(CACHES=caches):
        assert cache_url("e", "r") == f"{REDIS}?prefix=schemaless%3A&ttl=60"
        assert cache_url("e", "m") == "memcached://127.0.0.1:11311?prefix=shop%3Aschemaless%3A"
        for name in ("two", "local", "missing"):
            with pytest.raises(ImproperlyConfigured, match="CACHE"):
                cache_url("e", name)
