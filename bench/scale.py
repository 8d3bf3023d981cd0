"""The store at scale: N entities of about 1 KB on one server, against the same store at 200k.

The question behind the design is whether one shard keeps its speed as it grows, and whether a
new index can still be added to it while the site runs. On one private durable MySQL server, in
one run, with N entities (``--entities``, default 10,000,000: about 10 GB; 400k with --quick):

    load               store.put_many of 1000 bodies at a time: rows/s over the whole fill of N
                       vs  over its first 200k (a ratio below 1: the fill slowed as it grew)
    query_Nm_vs_200k   store.query("entry").filter(user_id=u).order_by("-published")[:10], as
                       bench/indexes.py runs it, for random users: queries/s at N vs at 200k
    get_Nm_vs_200k     store.get of a random id among all stored: gets/s at N vs at 200k
    backfill_rate      a new index, Backfill(...).run() over all N entities while one writer
                       puts (half new entities, half updates of existing ones)  vs  the rows/s
                       of the anchor: ``ALTER TABLE json_entries ADD COLUMN user_id INT AS
                       (JSON_VALUE(doc, '$.user_id')) VIRTUAL, ADD INDEX`` on a JSON table of
                       the same N bodies, beside the same writer (as bench/backfill.py does it)
    backfill_write_p99_ms / backfill_write_max_ms
                       the latencies of that writer during our backfill  vs  during the ALTER
                       (lower is better: a ratio below 1 means ours waited less); the target
                       for write_max_ms is under 100 ms

The targets: query and get at N at least 0.8 of their rate at 200k. The 200k rows are measured
first, on the first 200k entities and an index built over them; that index is then dropped, the
store filled up to N, and the new index (the same fields, another name) backfilled over all N
serves the query at N. The change log the fill leaves is emptied with TRUNCATE (no indexer runs
during the fill); the writer's own change rows are drained before the queries at N. The queries
and gets run with the benchmark on one core and the private server on the other (see
_common.apart), in rounds on fresh connections, keeping each size's median. The server's
buffer pool is _common's 1 GB: at 10M the entities do not fit in it, as in production.

Not in CI: at 10M it runs for over an hour and needs about 25 GB of disk (the JSON anchor
doubles the store's size).

    .venv/bin/python bench/scale.py [--entities N] [--quick] [--json results.json]
                                    [--url mysql+mysqldb://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import _common
import backfill
from schemaless_indexer.backfill import Backfill
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index

KIND, INDEX = _common.KIND, _common.INDEX
NEW_INDEX = Index(  # the index added at N: the same fields, so it serves the same query
    "entry_by_user_at_scale", kind=KIND, fields=dict(INDEX.fields), shard_on=INDEX.shard_on
)
BASE = 200_000
BATCH = 1000  # bodies per put_many: the distributed-engine rule of batches
JSON_BATCH = 1000
USERS = 1000  # as bench/indexes.py
SAMPLE_EVERY = 100  # one id in this many is kept, for the gets and the writer's updates
ROUNDS = 10  # per size, an even number
QUERIES = 300  # per round
GETS = 1000  # per round
LOG_EVERY = 30.0  # seconds between progress lines of the fill
TIMEOUT = 60.0  # the backfill counts its N rows first: more than the default 2 s


@dataclass(frozen=True)
class Size:
    entities: int

    @property
    def label(self) -> str:
        """N as the result names give it: 10m, 2m, 2.5m, 400k."""
        if self.entities >= 1_000_000:
            return f"{self.entities / 1_000_000:g}m"
        return f"{self.entities // 1000}k"


QUICK = Size(entities=400_000)
DEFAULT_ENTITIES = 10_000_000


class Bodies:
    """Entity n's body, the same every time: about 1 KB of msgpack (bench/store.py's mix of
    str, int and lists), one of USERS users, and a published time of its own."""

    WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")

    def __init__(self, seed: int = 7, variety: int = 1024) -> None:
        rng = random.Random(seed)

        def text(n: int) -> str:
            return " ".join(rng.choice(self.WORDS) for _ in range(n))

        self.pool = [
            {
                "title": text(8),
                "lang": "en",
                "rank": rng.randrange(100),
                "tags": [rng.choice(self.WORDS) for _ in range(6)],
                "scores": [rng.randrange(100_000) for _ in range(24)],
                "links": [f"https://example.com/{rng.randrange(10**9)}" for _ in range(4)],
                "summary": text(88),
            }
            for _ in range(variety)
        ]
        self.start = datetime(2024, 1, 1)

    def body(self, n: int) -> dict[str, Any]:
        seconds = (n * 2654435761) % (365 * 86400)  # scattered over a year, by a fixed hash
        return {
            **self.pool[n % len(self.pool)],
            "user_id": 1 + (n * 7919) % USERS,
            "published": self.start + timedelta(seconds=seconds, microseconds=n % 1_000_000),
        }

    def batch(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [self.body(n) for n in range(start, stop)]


# -- filling ----------------------------------------------------------------------------------


def fill(
    store: schemaless.Store, bodies: Bodies, start: int, stop: int, sample: list[uuid.UUID]
) -> float:
    """Put entities ``start``..``stop`` with put_many; the seconds the puts took.

    Every SAMPLE_EVERY-th id is appended to ``sample``. Making the bodies is not timed.
    """
    spent, logged = 0.0, time.monotonic()
    for first in range(start, stop, BATCH):
        batch = bodies.batch(first, min(stop, first + BATCH))
        began = time.monotonic()
        made = store.put_many(KIND, batch)
        spent += time.monotonic() - began
        sample += [entity.id for entity in made[::SAMPLE_EVERY]]
        if time.monotonic() - logged > LOG_EVERY:
            logged = time.monotonic()
            done = first + len(batch)
            print(f"  {done:,} entities, {(done - start) / spent:,.0f}/s", file=sys.stderr)
    return spent


def empty_change_log(store: schemaless.Store) -> None:
    """No indexer ran during the fill: its N change rows would only slow what comes next."""
    with store.shards[0].begin() as conn:
        conn.exec_driver_sql("TRUNCATE TABLE entity_changes")


def fill_json(url: str, bodies: Bodies, count: int) -> None:
    """The anchor's table: the same N bodies as JSON documents."""
    connection = _common.raw_connection(url, autocommit=False)
    cursor = connection.cursor()
    cursor.execute(backfill.JSON_TABLE)
    for first in range(0, count, JSON_BATCH):
        docs = [
            (backfill.as_json(body),)
            for body in bodies.batch(first, min(count, first + JSON_BATCH))
        ]
        cursor.executemany(backfill.JSON_INSERT, docs)
        connection.commit()
    connection.close()


def build(store: schemaless.Store, index: Index) -> int:
    """Add ``index`` and backfill it; the entities indexed."""
    store.add_index(index)
    return Backfill(store, index.name, progress=False, install_signal_handlers=False).run()


def drain(store: schemaless.Store) -> int:
    """Apply every change row waiting (the writer's), so the new index is complete."""
    worker = Worker(store, burst=True, install_signal_handlers=False)
    worker.run()
    return worker.stats.applied


# -- reads ------------------------------------------------------------------------------------


def read_rate(
    url: str, work: Callable[[schemaless.Store, random.Random], int], label: str
) -> float:
    """The median rate of ``work`` over ROUNDS rounds, each on a freshly connected store."""
    rng = random.Random(11)
    rates = []
    for _ in range(ROUNDS):
        store = schemaless.connect(url, timeout=TIMEOUT)
        try:
            work(store, random.Random(5))  # connects and warms up, untimed
            rates.append(_common.rate(lambda: work(store, rng)))  # noqa: B023
        finally:
            store.close()
    print(f"  {label}: {min(rates):,.0f}..{max(rates):,.0f}/s", file=sys.stderr)
    return statistics.median(rates)


def queries(store: schemaless.Store, rng: random.Random) -> int:
    for _ in range(QUERIES):
        user = rng.randrange(1, USERS + 1)
        found = list(store.query(KIND).filter(user_id=user).order_by("-published")[:10])
        if len(found) != 10:
            raise RuntimeError(f"user {user} has {len(found)} entries, not 10")
    return QUERIES


def getter(sample: list[uuid.UUID]) -> Callable[[schemaless.Store, random.Random], int]:
    def gets(store: schemaless.Store, rng: random.Random) -> int:
        for entity_id in rng.sample(sample, GETS):
            store.get(entity_id)
        return GETS

    return gets


def measure_reads(server: str, url: str, sample: list[uuid.UUID], at: str) -> tuple[float, float]:
    """(queries/s, gets/s) on the store as it is now."""
    with _common.apart(server):
        return (
            read_rate(url, queries, f"query at {at}"),
            read_rate(url, getter(sample), f"get at {at}"),
        )


# -- the run ----------------------------------------------------------------------------------


def measure(server: str, size: Size, stack: ExitStack) -> list[_common.Result]:
    bodies, writes = Bodies(), Bodies(seed=13)
    url = stack.enter_context(_common.database(server, "bench_scale"))
    store = schemaless.connect(url, timeout=TIMEOUT)
    stack.callback(store.close)
    store.migrate()
    sample: list[uuid.UUID] = []

    print(f"filling the store with the first {BASE:,} entities ...", file=sys.stderr)
    base_seconds = fill(store, bodies, 0, BASE, sample)
    empty_change_log(store)
    build(store, INDEX)
    query_base, get_base = measure_reads(server, url, sample, "200k")
    store.drop_index(INDEX.name)

    print(f"filling it up to {size.entities:,} entities ...", file=sys.stderr)
    rest_seconds = fill(store, bodies, BASE, size.entities, sample)
    empty_change_log(store)
    load_rate = size.entities / (base_seconds + rest_seconds)
    print(f"  {base_seconds + rest_seconds:.0f} s, {load_rate:,.0f}/s", file=sys.stderr)

    print(
        f"backfilling {NEW_INDEX.name} over {size.entities:,} under a writer ...", file=sys.stderr
    )
    store.add_index(NEW_INDEX)
    ours = backfill.timed(
        backfill.Writer("store", url, sample, writes.batch(0, 4096)),
        lambda: Backfill(
            store, NEW_INDEX.name, progress=False, install_signal_handlers=False
        ).run(),
    )
    backfill.describe("our backfill", ours, "entities")
    print(f"  then drained {drain(store):,} change rows of the writer", file=sys.stderr)
    query_n, get_n = measure_reads(server, url, sample, size.label)

    json_url = stack.enter_context(_common.database(server, "bench_scale_json"))
    print(f"filling json_entries with the same {size.entities:,} bodies ...", file=sys.stderr)
    fill_json(json_url, bodies, size.entities)
    json_ids = list(range(1, size.entities + 1, SAMPLE_EVERY))
    alter = backfill.timed(
        backfill.Writer("json", json_url, json_ids, writes.batch(0, 4096)),
        lambda: backfill.alter(json_url, "VIRTUAL"),
    )
    backfill.describe("ALTER ... VIRTUAL, ADD INDEX", alter)

    mine, theirs = ours.latencies(), alter.latencies()
    n = size.label
    return [
        _common.Result("load", load_rate, BASE / base_seconds, "rows/s"),
        _common.Result(f"query_{n}_vs_200k", query_n, query_base, "queries/s"),
        _common.Result(f"get_{n}_vs_200k", get_n, get_base, "gets/s"),
        _common.Result("backfill_rate", ours.rate, size.entities / alter.seconds, "rows/s"),
        _common.Result("backfill_write_p99_ms", backfill.p99(mine), backfill.p99(theirs), "ms"),
        _common.Result("backfill_write_max_ms", mine[-1], theirs[-1], "ms"),
    ]


def _entities(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--entities",
        type=int,
        default=DEFAULT_ENTITIES,
        help=f"how many entities to grow to (default {DEFAULT_ENTITIES:,}; --quick: "
        f"{QUICK.entities:,}); above {BASE:,}",
    )


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__, argv, extra=_entities)
    size = QUICK if args.quick else Size(entities=args.entities)
    if size.entities <= BASE:
        raise SystemExit(f"--entities must be above {BASE:,}")
    with ExitStack() as stack:
        server = stack.enter_context(_common.mysql_server(args.url))
        results = measure(server, size, stack)
    _common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
