"""A get served by the cache against the same get hand-written with raw mysqlclient.

On one MySQL server, in one run, with bodies of about 1 KB:

    cache            store.get(id), cache="redis://..."      vs a point SELECT + msgpack.unpackb
    cache_memcached  store.get(id), cache="memcached://..."  vs the same

The store and the anchor read the same database, pre-filled with 20k entities (5k with
--quick), all of them read once through the store first, so that the cache is warm: what is
measured is a hit, the steady state of a read-mostly entity (a miss costs the database read plus
two cache round trips). Redis is the machine's service on 127.0.0.1:6379 (under a prefix of this
run's own, deleted afterwards; the row is left out when none answers); memcached is a private
one started for the run. Single-threaded, with the benchmark on one core and a private MySQL
server on the others (see _common.apart); the cache servers are not pinned.

    .venv/bin/python bench/cache.py [--quick] [--url mysql+mysqldb://root@127.0.0.1:3306/]
                                    [--json results.json]
"""

from __future__ import annotations

import random
import secrets
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import _common
import msgpack
from store import SELECT, make_bodies

import schemaless
from schemaless.testing import Memcached

KIND = "bench"
REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Size:
    entities: int
    rounds: int
    gets: int


FULL = Size(entities=20_000, rounds=16, gets=2000)
QUICK = Size(entities=5_000, rounds=8, gets=500)


class Cached:
    """The store with a cache in front, as an application uses it."""

    def __init__(self, url: str, cache: str) -> None:
        self.store = schemaless.connect(url, cache=cache)

    def get(self, ids: list[uuid.UUID]) -> int:
        for entity_id in ids:
            self.store.get(entity_id)
        return len(ids)

    def close(self) -> None:
        self.store.close()


class Raw:
    """The same get with mysqlclient and msgpack alone: the anchor."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.reader = _common.raw_connection(url, autocommit=True)

    def get(self, ids: list[uuid.UUID]) -> int:
        for entity_id in ids:
            cursor = self.reader.cursor()
            cursor.execute(SELECT.format("= %s"), (entity_id.bytes,))
            row = cursor.fetchone()
            if row is None:
                raise KeyError(entity_id)
            msgpack.unpackb(row[3][2:])  # past the codec's two-byte header (codec.py)
        return len(ids)

    def reconnect(self) -> None:
        self.reader.close()
        self.reader = _common.raw_connection(self.url, autocommit=True)

    def close(self) -> None:
        self.reader.close()


def fill(url: str, count: int) -> list[uuid.UUID]:
    """Store ``count`` entities of about 1 KB; their ids."""
    store = schemaless.connect(url)
    store.migrate()
    bodies = make_bodies(256)
    ids: list[uuid.UUID] = []
    while len(ids) < count:
        batch = [bodies[(len(ids) + i) % len(bodies)] for i in range(min(1000, count - len(ids)))]
        ids += [e.id for e in store.put_many(KIND, batch)]
    store.close()
    return ids


def measure(name: str, ours: Cached, raw: Raw, ids: list[uuid.UUID], size: Size) -> _common.Result:
    ours.get(ids)  # warm: every entity is in the cache from here on
    rng = random.Random(11)

    def ready(work: Callable[[list[uuid.UUID]], int]) -> Callable[[], int]:
        job = rng.sample(ids, size.gets)
        return lambda: work(job)

    def ready_raw() -> Callable[[], int]:
        raw.reconnect()  # a fresh connection each round, as in bench/store.py
        raw.get(ids[:1])
        return ready(raw.get)

    result = _common.compare(name, "gets/s", lambda: ready(ours.get), ready_raw, rounds=size.rounds)
    stats = ours.store.cache.stats if ours.store.cache else None
    print(f"  {name}: {stats}", file=sys.stderr)
    return result


def _redis_prefix(stack: ExitStack) -> str | None:
    """A prefix of this run's own on the machine's Redis, its keys deleted at the end; None
    when no Redis answers."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"no Redis at {REDIS} ({exc}): its row is left out", file=sys.stderr)
        return None
    prefix = f"bench{secrets.token_hex(4)}:"

    def clean() -> None:
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.delete(*keys[start : start + 10_000])
        client.close()

    stack.callback(clean)
    return prefix


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__, argv)
    size = QUICK if args.quick else FULL
    results = []
    with ExitStack() as stack:
        server = stack.enter_context(_common.mysql_server(args.url))
        url = stack.enter_context(_common.database(server, "bench_cache"))
        print(f"filling {size.entities:,} entities ...", file=sys.stderr)
        ids = fill(url, size.entities)
        caches = {}
        prefix = _redis_prefix(stack)
        if prefix is not None:
            caches["cache"] = f"{REDIS}?prefix={prefix}"
        memcached = stack.enter_context(Memcached(memory_mb=256))
        caches["cache_memcached"] = memcached.url
        raw = Raw(url)
        stack.callback(raw.close)
        stack.enter_context(_common.apart(server))
        print(f"measuring, {size.rounds} rounds each (min..max per side):", file=sys.stderr)
        for name, cache in caches.items():
            ours = Cached(url, cache)
            stack.callback(ours.close)
            results.append(measure(name, ours, raw, ids, size))
    _common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
