"""The store's hot paths against the same work hand-written with raw mysqlclient.

On one MySQL server, in one run, with bodies of about 1 KB:

    put       store.put(kind, body)       vs INSERT entity + INSERT change row, in one transaction
    put_many  store.put_many(kind, 1000)  vs the same two executemany of 1000 rows, one transaction
    get       store.get(id)               vs a point SELECT + msgpack.unpackb
    get_many  store.get_many(100 ids)     vs SELECT ... WHERE id IN (100 ids) + msgpack.unpackb

Ours and the anchor each get a database of their own with the same tables (both made by
``Store.migrate()``), pre-filled to the same number of entities (200k; 20k with --quick), and the
same session settings (utf8mb4, UTC time zone, READ COMMITTED). The anchor serializes each body
with ``msgpack.packb`` and writes the same columns ours writes. The reads run first, on exactly
the pre-filled size, from memory (a private server's buffer pool holds both tables); the writes
then grow both tables alike. Single-threaded, with the benchmark on one core and a private
server on the others (see _common.apart): the same placement in every run.

    .venv/bin/python bench/store.py [--quick] [--url mysql+mysqldb://root@127.0.0.1:3306/]
                                    [--json results.json]
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import _common
import msgpack

import schemaless

KIND = "bench"
BATCH = 1000  # put_many
FETCH = 100  # get_many

INSERT_ENTITY = (
    "INSERT INTO entities (id, kind, version, updated, body) VALUES (%s, %s, %s, %s, %s)"
)
INSERT_CHANGE = (
    "INSERT INTO entity_changes (entity_id, kind, version, created) VALUES (%s, %s, %s, %s)"
)
SELECT = "SELECT id, kind, version, body FROM entities WHERE id {} AND body IS NOT NULL"


@dataclass(frozen=True)
class Size:
    """How much each side does: the pre-filled table, and each round's work."""

    entities: int
    rounds: int
    puts: int
    put_batches: int
    gets: int
    get_batches: int


# Many short rounds, an even number of them: ours and the anchor each go first equally often.
FULL = Size(entities=200_000, rounds=24, puts=200, put_batches=1, gets=1000, get_batches=40)
QUICK = Size(entities=20_000, rounds=8, puts=60, put_batches=1, gets=300, get_batches=10)


def make_bodies(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Bodies of about 1 KB of msgpack each, with a mix of str, int and list values."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    return [
        {
            "user_id": rng.randrange(1, 1_000_000),
            "title": text(8),
            "published": 1_700_000_000 + rng.randrange(10_000_000),
            "lang": "en",
            "rank": rng.randrange(100),
            "tags": [rng.choice(words) for _ in range(6)],
            "scores": [rng.randrange(100_000) for _ in range(24)],
            "links": [f"https://example.com/{rng.randrange(10**9)}" for _ in range(4)],
            "summary": text(90),
        }
        for _ in range(count)
    ]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Ours:
    """The store, as an application uses it."""

    def __init__(self, url: str) -> None:
        self.store = schemaless.connect(url)
        self.store.migrate()

    def put(self, bodies: list[dict[str, Any]]) -> int:
        for body in bodies:
            self.store.put(KIND, body)
        return len(bodies)

    def put_many(self, batches: list[list[dict[str, Any]]]) -> int:
        return sum(len(self.store.put_many(KIND, batch)) for batch in batches)

    def get(self, ids: list[uuid.UUID]) -> int:
        for entity_id in ids:
            self.store.get(entity_id)
        return len(ids)

    def get_many(self, batches: list[list[uuid.UUID]]) -> int:
        return sum(len(self.store.get_many(batch)) for batch in batches)

    def fill(self, bodies: list[dict[str, Any]]) -> list[uuid.UUID]:
        return [e.id for e in self.store.put_many(KIND, bodies)]

    def reconnect(self) -> None:
        self.store.close()  # the pool and the kept connections go; the next call connects anew

    def close(self) -> None:
        self.store.close()


class Raw:
    """The same work with mysqlclient and msgpack alone: the anchor."""

    def __init__(self, url: str) -> None:
        tables = schemaless.connect(url)  # the same tables as ours, made the same way
        tables.migrate()
        tables.close()
        self.url = url
        self.writer = _common.raw_connection(url, autocommit=False)
        self.reader = _common.raw_connection(url, autocommit=True)

    def reconnect(self) -> None:
        self.close()
        self.writer = _common.raw_connection(self.url, autocommit=False)
        self.reader = _common.raw_connection(self.url, autocommit=True)

    def put(self, bodies: list[dict[str, Any]]) -> int:
        for body in bodies:
            entity_id, blob, now = uuid.uuid4().bytes, msgpack.packb(body), utcnow()
            cursor = self.writer.cursor()
            cursor.execute(INSERT_ENTITY, (entity_id, KIND, 1, now, blob))
            cursor.execute(INSERT_CHANGE, (entity_id, KIND, 1, now))
            self.writer.commit()
        return len(bodies)

    def put_many(self, batches: list[list[dict[str, Any]]]) -> int:
        return sum(len(self._insert(batch)) for batch in batches)

    def get(self, ids: list[bytes]) -> int:
        for entity_id in ids:
            cursor = self.reader.cursor()
            cursor.execute(SELECT.format("= %s"), (entity_id,))
            row = cursor.fetchone()
            if row is None:
                raise KeyError(entity_id)
            msgpack.unpackb(row[3])
        return len(ids)

    def get_many(self, batches: list[list[bytes]]) -> int:
        found = 0
        for batch in batches:
            cursor = self.reader.cursor()
            cursor.execute(SELECT.format(f"IN ({', '.join(['%s'] * len(batch))})"), batch)
            found += len({row[0]: msgpack.unpackb(row[3]) for row in cursor.fetchall()})
        return found

    def fill(self, bodies: list[dict[str, Any]]) -> list[bytes]:
        return self._insert(bodies)

    def close(self) -> None:
        self.writer.close()
        self.reader.close()

    def _insert(self, bodies: list[dict[str, Any]]) -> list[bytes]:
        now = utcnow()
        rows = [(uuid.uuid4().bytes, KIND, 1, now, msgpack.packb(body)) for body in bodies]
        cursor = self.writer.cursor()
        cursor.executemany(INSERT_ENTITY, rows)
        cursor.executemany(INSERT_CHANGE, [row[:4] for row in rows])
        self.writer.commit()
        return [row[0] for row in rows]


def fill(side: Ours | Raw, bodies: list[dict[str, Any]], count: int) -> list[Any]:
    """Pre-fill one side to ``count`` entities, a batch of 1000 at a time; return their ids."""
    ids: list[Any] = []
    while len(ids) < count:
        ids += side.fill(_cycle(bodies, len(ids), min(BATCH, count - len(ids))))
    return ids


def _cycle(bodies: list[dict[str, Any]], start: int, count: int) -> list[dict[str, Any]]:
    return [bodies[(start + i) % len(bodies)] for i in range(count)]


def measure(ours: Ours, raw: Raw, size: Size) -> dict[str, _common.Result]:
    bodies = make_bodies(256)
    print(f"pre-filling both sides to {size.entities:,} entities ...", file=sys.stderr)
    ids = {ours: fill(ours, bodies, size.entities), raw: fill(raw, bodies, size.entities)}
    rng = random.Random(11)
    results: dict[str, _common.Result] = {}

    def bench(name: str, unit: str, make: Callable[[list[Any]], Any], warm: Any) -> None:
        def ready(side: Ours | Raw) -> Callable[[], int]:
            # Fresh connections every round: how fast one connection runs varies from
            # connection to connection (which CPU its server thread lands on), so both sides
            # draw anew each round, and the median evens the luck out.
            side.reconnect()
            work = getattr(side, name)
            work(warm(ids[side]))  # connects, untimed
            job = make(ids[side])
            return lambda: work(job)

        results[name] = _common.compare(
            name, unit, lambda: ready(ours), lambda: ready(raw), rounds=size.rounds
        )

    print(f"measuring, {size.rounds} rounds each (min..max per side):", file=sys.stderr)
    bench("get", "gets/s", lambda i: rng.sample(i, size.gets), lambda i: i[:1])
    bench("get_many", "rows/s", lambda i: _samples(rng, i, size.get_batches), lambda i: [i[:9]])
    one, few = bodies[:1], [bodies[:9]]
    bench("put", "puts/s", lambda _: _cycle(bodies, rng.randrange(256), size.puts), lambda _: one)
    bench("put_many", "rows/s", lambda _: _batches(rng, bodies, size.put_batches), lambda _: few)
    return results


def _samples(rng: random.Random, ids: list[Any], count: int) -> list[list[Any]]:
    return [rng.sample(ids, FETCH) for _ in range(count)]


def _batches(rng: random.Random, bodies: list[dict[str, Any]], count: int) -> list[list[Any]]:
    return [_cycle(bodies, rng.randrange(256), BATCH) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__, argv)
    size = QUICK if args.quick else FULL
    with ExitStack() as stack:
        server = stack.enter_context(_common.mysql_server(args.url))
        ours = Ours(stack.enter_context(_common.database(server, "bench_store_ours")))
        stack.callback(ours.close)
        raw = Raw(stack.enter_context(_common.database(server, "bench_store_raw")))
        stack.callback(raw.close)
        stack.enter_context(_common.apart(server))
        results = measure(ours, raw, size)
    order = ("put", "put_many", "get", "get_many")
    _common.report([results[name] for name in order], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
