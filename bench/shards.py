"""The store across shards: two servers against one, the cache, and a bucket move.

    put_2_vs_1      puts/s of 8 client threads putting into a store of 2 shards, one on each of
                    two private servers  vs  the same 8 threads on a store of 1 shard (target:
                    no loss, ratio >= 0.9)
    get_2_vs_1      the same with gets of random pre-filled ids (>= 0.9)
    pinned_2_vs_1   queries/s of store.query("entry").filter(user_id=u).order_by("-published")[:10]
                    of a kind defined with colocate_on="user_id" and an index with
                    shard_on="user_id" (one statement on one server), on 2 shards  vs  on 1
                    (>= 0.9)
    scatter_2_vs_1  queries/s of an unpinned query, filter(published__lt=t).order_by("-published")
                    [:10] on an index without shard_on: both shards read at once and merged, on
                    2 shards  vs  on 1 (>= 0.6)
    cache           a get served by Redis (memcached when no Redis answers)  vs  a raw
                    mysqlclient point SELECT + msgpack.unpackb: bench/cache.py's row (>= 1.0)
    move_write_max_ms  the longest put/update of a writer thread while buckets 0-1023 move from
                       s0 to a new shard s2 (copy, catch-up, freeze, flip, clean-up), against
                       the 1,000 ms the design allows (ratio below 1 is within it)
    move_rate          entities moved per second (copy through flip, the grace period left
                       out) against raw mysqlclient copying the same rows between the same
                       databases (SELECT by id range, executemany INSERT, one commit a batch)

The 2-vs-1 rows run on two private durable servers (--url and --url2 name others): the store of
1 shard lives on the first, the store of 2 on both, each pre-filled alike (40k entities of about
1 KB and 40k entries of about 200 bytes; 10k with --quick). All servers share this machine's
cores: on 2 cores the benchmark runs on one and both servers on the other (see _common.apart),
so two servers bring no CPU of their own, and "no loss" is the honest target. Rounds alternate
which store goes first, each on fresh connections. The cache and the move run on the first
server: the move on three databases, pre-filled with 40k entities of about 1 KB (10k with
--quick), a quarter of which move.

    .venv/bin/python bench/shards.py [--quick] [--url mysql+mysqldb://root@127.0.0.1:3306/]
                                     [--url2 URL] [--json results.json]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import _common
import cache
from indexes import USERS, Entries
from schemaless_indexer.worker import Worker
from store import make_bodies

import schemaless
from schemaless import Index
from schemaless.moves import MoveOptions, Mover, add_shard, parse
from schemaless.moves.plan import holds, id_ranges
from schemaless.testing import Memcached

KIND = "bench"
MOVED = "0-1023"
THREADS = 8  # client threads of put_2_vs_1 and get_2_vs_1
ENTRY, BY_USER = _common.KIND, _common.INDEX  # entry_by_user(user_id, published), shard_on user_id
BY_TIME = Index("entry_by_time", kind=ENTRY, fields={"published": "datetime"})  # no shard_on
CPU_NOTE = (
    "note: all servers share this machine's {cpus} cores with the benchmark ({placement}); "
    "a second server adds no CPU here, so the 2-vs-1 target is no loss"
)


@dataclass(frozen=True)
class Size:
    entities: int  # pre-filled per store: bodies of ~1 KB (put/get), and as many entries
    rounds: int  # per side, an even number
    puts: int  # per thread per round
    gets: int  # per thread per round
    queries: int  # per round
    moved: int  # entities of the move's store


FULL = Size(entities=40_000, rounds=10, puts=60, gets=400, queries=400, moved=40_000)
QUICK = Size(entities=10_000, rounds=6, puts=25, gets=150, queries=150, moved=10_000)


# -- two servers vs one -----------------------------------------------------------------------


class Crew:
    """THREADS threads sharing one store, each warmed up, released together by the timed call."""

    def __init__(self, store: schemaless.Store, work: Callable[[int], int]) -> None:
        self.work = work
        self.go = threading.Event()
        self.ready = threading.Barrier(THREADS + 1)
        self.done: list[int] = []
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)
        ]
        for thread in self.threads:
            thread.start()
        self.ready.wait(timeout=60)  # every thread connected and warmed up: untimed

    def _run(self, n: int) -> None:
        self.work(-1 - n)  # a warm-up op: the connection of this thread, untimed
        self.ready.wait(timeout=60)
        self.go.wait()
        self.done.append(self.work(n))

    def __call__(self) -> int:
        self.go.set()
        for thread in self.threads:
            thread.join()
        return sum(self.done)


class Side:
    """One store (of 1 shard or of 2) and what the 2-vs-1 rows do with it."""

    def __init__(self, urls: str | dict[str, str], size: Size, seed: int) -> None:
        self.store = schemaless.connect(urls, pool_size=THREADS)
        self.size = size
        self.bodies = make_bodies(256, seed=seed)
        self.rng = random.Random(seed)
        self.ids: list[uuid.UUID] = []

    def fill(self) -> None:
        """Bodies of ~1 KB for get, and colocated, indexed entries for the queries."""
        store, count = self.store, self.size.entities
        store.migrate()
        store.define_kind(ENTRY, colocate_on="user_id")
        store.add_index(BY_USER)
        store.add_index(BY_TIME)
        entries = Entries(seed=1)  # the same entries on both sides
        for start in range(0, count, 1000):
            batch = [self.bodies[(start + n) % 256] for n in range(min(1000, count - start))]
            self.ids += [e.id for e in store.put_many(KIND, batch)]
            store.put_many(ENTRY, entries.bodies(min(1000, count - start)))
        Worker(store, burst=True, install_signal_handlers=False).run()

    def putting(self) -> Callable[[], int]:
        self.store.close()  # fresh connections every round, as in bench/store.py

        def put(n: int) -> int:
            puts = 1 if n < 0 else self.size.puts
            for i in range(puts):
                self.store.put(KIND, self.bodies[(n * 31 + i) % 256])
            return puts

        return Crew(self.store, put)

    def getting(self) -> Callable[[], int]:
        self.store.close()
        jobs = [self.rng.sample(self.ids, self.size.gets) for _ in range(THREADS)]

        def get(n: int) -> int:
            job = self.ids[:1] if n < 0 else jobs[n]
            for entity_id in job:
                self.store.get(entity_id)
            return len(job)

        return Crew(self.store, get)

    def pinned(self, user: int) -> list[Any]:
        return list(self.store.query(ENTRY).filter(user_id=user).order_by("-published")[:10])

    def scatter(self, before: datetime) -> list[Any]:
        query = self.store.query(ENTRY).filter(published__lt=before).order_by("-published")
        return list(query[:10])

    def querying(self, ask: Callable[[Any], list[Any]], args: list[Any]) -> Callable[[], int]:
        self.store.close()
        ask(args[0])  # connects, untimed

        def run() -> int:
            for arg in args:
                ask(arg)
            return len(args)

        return run

    def close(self) -> None:
        self.store.close()


def users(rng: random.Random, count: int) -> list[int]:
    return [rng.randrange(1, USERS + 1) for _ in range(count)]


def times(rng: random.Random, count: int) -> list[datetime]:
    start = datetime(2024, 1, 1)
    return [start + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(count)]


def same_answers(two: Side, one: Side) -> None:
    """Both stores answer every query alike (same bodies, same order) before either is timed."""
    rng = random.Random(5)
    for ask, args in (("pinned", users(rng, 20)), ("scatter", times(rng, 20))):
        for arg in args:
            got = [[e.body for e in getattr(side, ask)(arg)] for side in (two, one)]
            if got[0] != got[1]:
                raise RuntimeError(f"the stores of 2 and 1 shards disagree on {ask}({arg})")


def two_vs_one(first: str, second: str, size: Size) -> list[_common.Result]:
    """put_2_vs_1, get_2_vs_1, pinned_2_vs_1, scatter_2_vs_1."""
    with ExitStack() as stack:
        dbs = [
            stack.enter_context(_common.database(server, f"bench_shards_{name}"))
            for server, name in ((first, "one"), (first, "two0"), (second, "two1"))
        ]
        one = Side(dbs[0], size, seed=7)
        stack.callback(one.close)
        two = Side({"s0": dbs[1], "s1": dbs[2]}, size, seed=7)
        stack.callback(two.close)
        print(f"pre-filling both stores, {size.entities:,} entities each ...", file=sys.stderr)
        one.fill()
        two.fill()
        same_answers(two, one)
        stack.enter_context(_common.apart(first))
        stack.enter_context(_common.apart(second))
        print(f"measuring, {size.rounds} rounds each (min..max per side):", file=sys.stderr)
        rounds, rng = size.rounds, random.Random(13)

        def compare(name: str, unit: str, ready: Callable[[Side], Callable[[], int]]) -> Any:
            return _common.compare(
                name, unit, lambda: ready(two), lambda: ready(one), rounds=rounds
            )

        def query(ask: str, make: Callable[[random.Random, int], list[Any]]) -> Any:
            return lambda side: side.querying(getattr(side, ask), make(rng, size.queries))

        return [
            compare("put_2_vs_1", "puts/s", Side.putting),
            compare("get_2_vs_1", "gets/s", Side.getting),
            compare("pinned_2_vs_1", "queries/s", query("pinned", users)),
            compare("scatter_2_vs_1", "queries/s", query("scatter", times)),
        ]


# -- the cache --------------------------------------------------------------------------------


def cached_get(server: str, quick: bool) -> _common.Result:
    """bench/cache.py's cache row: a Redis hit (memcached's when no Redis answers) vs raw."""
    size = cache.QUICK if quick else cache.FULL
    with ExitStack() as stack:
        url = stack.enter_context(_common.database(server, "bench_shards_cache"))
        print(f"filling {size.entities:,} entities for the cache ...", file=sys.stderr)
        ids = cache.fill(url, size.entities)
        prefix = cache._redis_prefix(stack)
        if prefix is not None:
            name, cache_url = "cache", f"{cache.REDIS}?prefix={prefix}"
        else:
            name, cache_url = "cache_memcached", stack.enter_context(Memcached()).url
        raw = cache.Raw(url)
        stack.callback(raw.close)
        ours = cache.Cached(url, cache_url)
        stack.callback(ours.close)
        stack.enter_context(_common.apart(server))
        return cache.measure(name, ours, raw, ids, size)


# -- a bucket move ----------------------------------------------------------------------------


class Writer(threading.Thread):
    """Puts new entities and updates old ones until stopped; keeps its longest write."""

    def __init__(self, store: schemaless.Store, bodies: list[dict[str, Any]], ids: list[Any]):
        super().__init__(daemon=True)
        self.store, self.bodies, self.ids = store, bodies, ids
        self.stopping = threading.Event()
        self.longest = 0.0
        self.writes = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            body = self.bodies[self.writes % len(self.bodies)]
            started = time.perf_counter()
            if self.writes % 2:
                self.store.put(KIND, body, id=self.ids[self.writes % len(self.ids)])
            else:
                self.store.put(KIND, body)
            self.longest = max(self.longest, time.perf_counter() - started)
            self.writes += 1


def move_under_writer(urls: dict[str, str], entities: int) -> list[_common.Result]:
    """move_write_max_ms and move_rate: one move of buckets 0-1023 to a new shard."""
    bodies = make_bodies(256)
    store = schemaless.connect({"s0": urls["s0"], "s1": urls["s1"]})
    store.migrate()
    ids = []
    for start in range(0, entities, 1000):
        batch = [bodies[(start + n) % len(bodies)] for n in range(min(1000, entities - start))]
        ids += [e.id for e in store.put_many(KIND, batch)]
    store.close()
    store = schemaless.connect(urls)
    add_shard(store)
    moving = sum(holds(0, set(parse(MOVED)), i.bytes) for i in ids)
    raw = raw_copy_rate(urls)
    writer = Writer(schemaless.connect(urls), bodies, ids)
    writer.start()
    time.sleep(0.5)
    mover = Mover(store, MoveOptions(grace=0.0, arm_grace=2.5))  # arming: once per store
    (move,) = mover.plan(parse(MOVED), "s2")
    started = time.perf_counter()
    mover.run(move, until="flipped")
    seconds = time.perf_counter() - started
    mover.run(move)
    time.sleep(0.5)
    writer.stopping.set()
    writer.join()
    print(
        f"  moved {moving:,} entities in {seconds:.2f} s, writes frozen {move.frozen_ms:.0f} ms, "
        f"{writer.writes:,} writes meanwhile",
        file=sys.stderr,
    )
    return [
        _common.Result("move_write_max_ms", writer.longest * 1000, 1000.0, "ms (max < 1000)"),
        _common.Result("move_rate", moving / seconds, raw, "entities/s"),
    ]


def raw_copy_rate(urls: dict[str, str]) -> float:
    """Raw mysqlclient copying the moved rows from s0 into a scratch table beside s2's."""
    source = _common.raw_connection(urls["s0"])
    target = _common.raw_connection(urls["s2"], autocommit=False)
    cursor = target.cursor()
    cursor.execute("CREATE TABLE scratch LIKE entities")
    copied, started = 0, time.perf_counter()
    select = "SELECT id, kind, version, updated, body FROM entities WHERE id BETWEEN %s AND %s "
    insert = "INSERT INTO scratch (id, kind, version, updated, body) VALUES (%s, %s, %s, %s, %s)"
    for lo, hi in id_ranges(0, parse(MOVED)):
        after = lo
        while True:
            read = source.cursor()
            read.execute(select + "AND id > %s ORDER BY id LIMIT 500", (lo, hi, after))
            rows = read.fetchall()
            if not rows:
                break
            cursor.executemany(insert, rows)
            target.commit()
            copied, after = copied + len(rows), rows[-1][0]
    rate = copied / (time.perf_counter() - started)
    cursor.execute("DROP TABLE scratch")
    source.close()
    target.close()
    return rate


def main(argv: list[str] | None = None) -> int:
    def second_server(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--url2",
            help="the second server of the 2-vs-1 rows. Default: a private durable server",
        )

    args = _common.parse_args(__doc__, argv, second_server)
    size = QUICK if args.quick else FULL
    with ExitStack() as stack:
        first = stack.enter_context(_common.mysql_server(args.url))
        second = stack.enter_context(_common.mysql_server(args.url2))
        results = two_vs_one(first, second, size)
        results.append(cached_get(first, args.quick))
        urls = {
            name: stack.enter_context(_common.database(first, f"bench_shards_{name}"))
            for name in ("s0", "s1", "s2")
        }
        results += move_under_writer(urls, size.moved)
    _common.report(results, args.json)
    print(CPU_NOTE.format(cpus=len(os.sched_getaffinity(0)), placement=placement(args)))
    return 0


def placement(args: argparse.Namespace) -> str:
    if args.url or args.url2 or len(os.sched_getaffinity(0)) < 2:
        return "placed by the scheduler"
    return "the 2-vs-1 and cache rows: the benchmark on one core, the servers on the others"


if __name__ == "__main__":
    sys.exit(main())
