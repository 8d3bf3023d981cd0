"""The read-through cache on real Redis (the machine's service) and a private memcached.

Every test runs on both caches, each with a key prefix of its own, in front of a real MySQL
database: hits, misses, invalidation, the race of a fill against a write, a dead or silent
cache, a damaged entry, and the bound on staleness when an invalidation is lost.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import schemaless
from schemaless.cache import Entry, MemcachedCache, RedisCache, open_cache
from schemaless.testing import Memcached, mysql_connection

REDIS = ("127.0.0.1", 6379)
KIND = "entry"


def _must_have(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must not skip")
    pytest.skip(reason)


def _started_memcached() -> Iterator[Memcached]:
    server = Memcached()
    try:
        server.start()
    except RuntimeError as exc:
        _must_have(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def memcached() -> Iterator[Memcached]:
    """One private memcached for the module's tests that do not stop it."""
    yield from _started_memcached()


@pytest.fixture
def own_memcached() -> Iterator[Memcached]:
    """A private memcached for one test, which may kill or pause it."""
    yield from _started_memcached()


@pytest.fixture
def redis_base(redis_prefix: str) -> str:
    """The machine's Redis, with a key prefix of this test's own (cleaned up afterwards)."""
    return f"redis://{REDIS[0]}:{REDIS[1]}/0?prefix={redis_prefix}:"


@pytest.fixture(params=["redis", "memcached"])
def cache_url(request: pytest.FixtureRequest) -> str:
    """A cache URL with a prefix of the test's own, once per kind of cache."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_base"))
    server = request.getfixturevalue("memcached")
    return f"{server.url}?prefix=t{secrets.token_hex(6)}:"


def _connect(url: str, cache: str) -> schemaless.Store:
    store = schemaless.connect(url, cache=cache)
    store.migrate()
    return store


@pytest.fixture
def store(mysql_url: str, cache_url: str) -> Iterator[schemaless.Store]:
    store = _connect(mysql_url, cache_url)
    yield store
    store.close()


@pytest.fixture
def other(mysql_url: str, cache_url: str) -> Iterator[schemaless.Store]:
    """A second store on the same database and cache: another process, in effect."""
    store = _connect(mysql_url, cache_url)
    yield store
    store.close()


def _behind_its_back(url: str, store: schemaless.Store, entity_id: uuid.UUID, body: Any) -> None:
    """Change an entity's body in the database without the store (so the cache never knows)."""
    connection = mysql_connection(url, autocommit=True)
    try:
        connection.cursor().execute(
            "UPDATE entities SET body = %s WHERE id = %s",
            (store.codec.encode(body), entity_id.bytes),
        )
    finally:
        connection.close()


def _key(cache_url: str, entity_id: uuid.UUID) -> str:
    cache = open_cache(cache_url)
    assert cache is not None
    return cache.options.prefix + entity_id.hex


def _raw_set(cache_url: str, key: str, value: bytes) -> None:
    """Write bytes under a key with the cache's own client, bypassing its protocol."""
    cache = open_cache(cache_url)
    assert isinstance(cache, RedisCache | MemcachedCache)
    cache.client.set(key, value)
    cache.close()


# -- hits, misses, invalidation ----------------------------------------------------------------


def test_second_get_is_served_from_the_cache(store: schemaless.Store, mysql_url: str) -> None:
    e = store.put(KIND, {"title": "cached"})
    assert store.get(e.id)["title"] == "cached"
    _behind_its_back(mysql_url, store, e.id, {"title": "changed in the database only"})
    assert store.get(e.id)["title"] == "cached"  # so it came from the cache
    stats = store.cache.stats
    assert (stats.misses, stats.fills, stats.hits) == (1, 1, 1)


def test_put_invalidates_for_every_store(store: schemaless.Store, other: schemaless.Store) -> None:
    e = store.put(KIND, {"n": 1})
    assert other.get(e.id).version == 1  # cached by the other store
    store.put(KIND, {"n": 2}, id=e.id)
    got = other.get(e.id)
    assert (got.version, got["n"]) == (2, 2)
    assert other.get(e.id).version == 2


def test_delete_invalidates(store: schemaless.Store, other: schemaless.Store) -> None:
    e = store.put(KIND, {"n": 1})
    other.get(e.id)
    assert store.delete(e.id)
    with pytest.raises(schemaless.NotFound):
        other.get(e.id)
    assert other.get_many([e.id]) == {}


def test_get_many_mixes_hits_misses_and_absent_ids(store: schemaless.Store) -> None:
    made = store.put_many(KIND, [{"n": n} for n in range(6)])
    store.get_many([e.id for e in made[:3]])
    absent = uuid.uuid4()
    found = store.get_many([*(e.id for e in made), absent])
    assert {i: e["n"] for i, e in found.items()} == {e.id: n for n, e in enumerate(made)}
    stats = store.cache.stats
    assert stats.hits == 3
    assert stats.fills == 6


def test_an_id_put_with_a_given_id_is_not_served_stale(store: schemaless.Store) -> None:
    entity_id = uuid.uuid4()
    with pytest.raises(schemaless.NotFound):
        store.get(entity_id)  # a miss leaves a lease, never a cached absence
    store.put(KIND, {"n": 1}, id=entity_id)
    assert store.get(entity_id)["n"] == 1


def test_a_sqlite_store_uses_the_cache_too(sqlite_url: str, cache_url: str) -> None:
    store, other = _connect(sqlite_url, cache_url), _connect(sqlite_url, cache_url)
    try:
        e = store.put(KIND, {"n": 1})
        assert other.get(e.id).version == 1
        store.put(KIND, {"n": 2}, id=e.id)
        assert other.get(e.id).version == 2
        assert other.cache is not None and other.cache.stats.fills == 2
    finally:
        store.close()
        other.close()


# -- the race of a fill against a write --------------------------------------------------------


def test_fill_that_raced_a_write_is_refused(
    store: schemaless.Store, other: schemaless.Store
) -> None:
    """Reader R misses and reads version 1; writer W commits version 2 and invalidates; R's
    fill of version 1 must then lose, whatever R does next."""
    e = store.put(KIND, {"n": 1})
    cache = store.cache
    assert cache is not None

    def read_then_lose_the_race(keys: list[bytes]) -> Any:
        rows = store._fetch_each(keys)  # version 1, read before the write below
        other.put(KIND, {"n": 2}, id=e.id)  # commits and invalidates
        return rows

    (row,) = cache.read_through([e.id.bytes], read_then_lose_the_race)
    assert row[2] == 1  # what R read
    assert cache.stats.lost_fills == 1
    assert store.get(e.id).version == 2
    assert other.get(e.id).version == 2


def test_fill_older_than_the_tombstone_it_found_is_refused(store: schemaless.Store) -> None:
    """A read that returns an older version than the write it found invalidated (a lagging
    replica's, say) must not fill the cache with it."""
    e = store.put(KIND, {"n": 1})
    old_rows = store._fetch_each([e.id.bytes])
    store.put(KIND, {"n": 2}, id=e.id)  # leaves a tombstone of version 2
    cache = store.cache
    assert cache is not None
    (row,) = cache.read_through([e.id.bytes], lambda keys: old_rows)
    assert row[2] == 1
    assert cache.stats.fills == 0
    assert store.get(e.id).version == 2


def test_no_get_started_after_a_put_returned_sees_an_older_version(
    mysql_url: str, cache_url: str
) -> None:
    """Writers put new versions of a few entities while readers get them, for a few seconds:
    each read must see at least the version of the last put that had returned when it began."""
    writer, reader = _connect(mysql_url, cache_url), _connect(mysql_url, cache_url)
    ids = [writer.put(KIND, {"n": 0}).id for _ in range(3)]
    floor = dict.fromkeys(ids, 1)
    lock = threading.Lock()
    stale: list[tuple[uuid.UUID, int, int]] = []
    reads = [0]
    stop = time.monotonic() + 3.0

    def write(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            entity_id = rng.choice(ids)
            version = writer.put(KIND, {"n": seed}, id=entity_id).version
            with lock:
                floor[entity_id] = max(floor[entity_id], version)

    def read(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            entity_id = rng.choice(ids)
            with lock:
                before = floor[entity_id]
            got = reader.get(entity_id).version
            if got < before:
                stale.append((entity_id, before, got))
            reads[0] += 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=read, args=(n,)) for n in range(10, 14)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        writer.close()
        reader.close()
    assert stale == [], f"{len(stale)} stale reads of {reads[0]}, e.g. {stale[:3]}"
    assert reads[0] > 100
    assert reader.cache is not None and reader.cache.stats.hits > 0


# -- a damaged entry, a dead or silent cache ---------------------------------------------------


def test_damaged_entry_is_a_miss(store: schemaless.Store, cache_url: str) -> None:
    e = store.put(KIND, {"n": 1})
    store.get(e.id)
    good = Entry(1, 1, KIND, store.codec.encode({"n": 1})).pack()
    damaged = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]
    _raw_set(cache_url, _key(cache_url, e.id), damaged)
    assert store.get(e.id)["n"] == 1
    assert store.cache.stats.corrupt == 1
    assert store.get(e.id)["n"] == 1  # refilled: a hit again
    assert store.cache.stats.hits == 1


def test_dead_memcached_falls_through_to_the_database(
    mysql_url: str, own_memcached: Memcached
) -> None:
    store = _connect(mysql_url, f"{own_memcached.url}?retry_after=0.5")
    try:
        e = store.put(KIND, {"n": 1})
        store.get(e.id)
        own_memcached.kill()
        _reads_answer_from_the_database(store, e.id)
        store.put(KIND, {"n": 2}, id=e.id)  # the invalidation fails, is kept
        assert store.cache.stats.pending == 1
        own_memcached.start()  # empty, on the same port
        time.sleep(0.6)
        assert store.get(e.id).version == 2
        assert store.cache.stats.pending == 0
        assert store.get(e.id).version == 2
    finally:
        store.close()


def test_refused_redis_falls_through_to_the_database(mysql_url: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = _connect(mysql_url, f"redis://127.0.0.1:{port}/0")
    try:
        e = store.put(KIND, {"n": 1})
        _reads_answer_from_the_database(store, e.id)
    finally:
        store.close()


def test_silent_memcached_costs_one_short_timeout(mysql_url: str, own_memcached: Memcached) -> None:
    store = _connect(mysql_url, f"{own_memcached.url}?retry_after=30")  # no probe mid-test
    try:
        e = store.put(KIND, {"n": 1})
        store.get(e.id)
        own_memcached.pause()
        _reads_answer_from_the_database(store, e.id)
    finally:
        own_memcached.resume()
        store.close()


def test_silent_redis_costs_one_short_timeout(mysql_url: str, redis_base: str) -> None:
    import redis

    sep = "&" if "?" in redis_base else "?"
    store = _connect(mysql_url, f"{redis_base}{sep}retry_after=30")  # no probe mid-test
    admin = redis.Redis(*REDIS)
    try:
        e = store.put(KIND, {"n": 1})
        store.get(e.id)
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        _reads_answer_from_the_database(store, e.id)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        store.close()


def _reads_answer_from_the_database(store: schemaless.Store, entity_id: uuid.UUID) -> None:
    """The first get pays one cache timeout (0.1 s) at most, the next twenty skip the cache at
    once (twenty timeouts would take 2 s; the bounds leave room for a loaded machine)."""
    assert store.cache is not None
    errors = store.cache.stats.errors
    started = time.monotonic()
    assert store.get(entity_id).id == entity_id
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    for _ in range(20):
        assert entity_id in store.get_many([entity_id])
    assert time.monotonic() - started < 1.0
    stats = store.cache.stats
    assert stats.errors == errors + 1
    assert stats.skipped >= 20


# -- what bounds staleness when an invalidation is lost ----------------------------------------


def test_lost_invalidation_is_delivered_when_the_cache_answers_again(
    mysql_url: str, own_memcached: Memcached
) -> None:
    url = f"{own_memcached.url}?retry_after=0.3"
    writer, reader = _connect(mysql_url, url), _connect(mysql_url, url)
    try:
        e = writer.put(KIND, {"n": 1})
        reader.get(e.id)  # version 1 cached
        own_memcached.pause()  # silent: it keeps what it holds
        writer.put(KIND, {"n": 2}, id=e.id)
        assert writer.cache is not None and writer.cache.stats.pending == 1
        assert writer.get(e.id).version == 2  # the writer's own reads skip the cache meanwhile
        own_memcached.resume()
        time.sleep(0.4)
        assert writer.get(e.id).version == 2  # delivers the kept invalidation first
        assert reader.get(e.id).version == 2
    finally:
        own_memcached.resume()
        writer.close()
        reader.close()


def test_an_entry_whose_invalidation_was_lost_expires_with_its_ttl(
    mysql_url: str, cache_url: str
) -> None:
    store = _connect(mysql_url, f"{cache_url}&ttl=2")
    try:
        e = store.put(KIND, {"n": 1})
        store.get(e.id)
        _behind_its_back(mysql_url, store, e.id, {"n": 2})  # a write whose invalidation was lost
        assert store.get(e.id)["n"] == 1
        time.sleep(3.1)  # memcached counts whole seconds: an entry lives 1 to 2 s
        assert store.get(e.id)["n"] == 2
    finally:
        store.close()


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "memcached://127.0.0.1:11211/db",
        "memcached://127.0.0.1:11211?ttl=-1",
        "redis://127.0.0.1:6379/0?timeout=soon",
        "memcached://127.0.0.1:11211?prefix=a%20b",
    ],
)
def test_bad_cache_urls_are_refused(url: str) -> None:
    with pytest.raises(schemaless.ConfigurationError):
        schemaless.connect("sqlite://", cache=url)


def test_options_come_from_the_url() -> None:
    cache = open_cache("memcached://127.0.0.1:1?prefix=app:&ttl=60&timeout=0.05")
    assert cache is not None
    assert (cache.options.prefix, cache.options.ttl, cache.options.timeout) == ("app:", 60, 0.05)
    cache.close()
