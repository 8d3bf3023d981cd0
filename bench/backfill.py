"""Adding an index to a live store: the backfill's rate, and what a writer feels meanwhile.

The reason this design exists: on MySQL, adding an indexed field to a big table stalls writes.
Here, on one MySQL server, in one run:

    backfill       Backfill(store, "entry_by_user").run() over 1M entities (100k with --quick)
                   vs a raw mysqlclient copy of the same rows: a keyset scan of ``entities`` by
                   added_id, 1000 rows a batch, msgpack-decoding each body and executemany-ing
                   (user_id, published, entity_id, version, 0) into a copy of the index table
                   (CREATE TABLE ... LIKE), one transaction a batch: our work minus the locking,
                   the registry and the progress.
    write_p99_ms   one writer putting entities throughout our backfill (half new entities, half
    write_max_ms   updates of random existing ones, which can wait on the backfill's FOR UPDATE
                   locks) vs the same mix of raw INSERTs and UPDATEs into a 1M-row JSON table
                   while it runs ``ALTER TABLE json_entries ADD COLUMN user_id INT AS
                   (JSON_VALUE(doc, '$.user_id')) VIRTUAL, ADD INDEX (user_id)``: the anchor
                   column of write_max_ms is alter_write_max_ms.
    write_max_ms_stored  the same, against the ALTER with a STORED column (a table copy).

For the *_ms rows lower is better, so a ratio below 1 means our writer waited less than the
writer beside the ALTER did. Both writers run in a process of their own (as an application
would, and so that they share no GIL with the backfill), write as fast as they can, and count
every operation that was under way at any moment of the backfill or the ALTER.

The entities are filled with ``store.put_many`` in batches of 2000 bodies of about 120 bytes
(user_id, published, title, tags); the change log this leaves (one row per entity) is then
emptied with TRUNCATE, so that the backfill does not compete with a 1M-row log no indexer is
draining. No indexer runs during the measurements: the writer's change rows simply wait. The
JSON table holds the same bodies as JSON documents, filled with executemany.

    .venv/bin/python bench/backfill.py [--quick] [--url mysql+mysqldb://root@127.0.0.1:3306/]
                                       [--json results.json]
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import _common
import msgpack
from schemaless_indexer.backfill import Backfill

import schemaless

KIND, INDEX = _common.KIND, _common.INDEX
FILL_BATCH = 2000  # bodies per put_many / executemany while filling
SAMPLE_EVERY = 100  # one entity in this many is a target of the writers' updates
COPY_BATCH = 1000  # the raw copy's keyset batch, as Backfill's default
WARM = 1.0  # seconds the writer runs before the measured work starts
COOL = 0.5  # and after it ends, so that the operations it held up finish and count

SCAN = (
    "SELECT added_id, id, version, body FROM entities FORCE INDEX (ix_entities_kind_added) "
    "WHERE kind = %s AND added_id > %s "
    "AND added_id <= %s AND body IS NOT NULL ORDER BY added_id LIMIT %s"
)
COPY_INSERT = (  # entity_row: one row per entity (no list field), so always 0
    "INSERT INTO raw_copy (user_id, published, entity_id, version, entity_row) "
    "VALUES (%s, %s, %s, %s, 0)"
)
JSON_TABLE = (
    "CREATE TABLE json_entries (id BIGINT AUTO_INCREMENT PRIMARY KEY, doc JSON NOT NULL) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
JSON_INSERT = "INSERT INTO json_entries (doc) VALUES (%s)"
JSON_UPDATE = "UPDATE json_entries SET doc = %s WHERE id = %s"
ALTER = (
    "ALTER TABLE json_entries ADD COLUMN user_id INT AS (JSON_VALUE(doc, '$.user_id')) {}, "
    "ADD INDEX ix_json_user (user_id)"
)
UNDO_ALTER = "ALTER TABLE json_entries DROP INDEX ix_json_user, DROP COLUMN user_id"


@dataclass(frozen=True)
class Size:
    entities: int


FULL = Size(entities=1_000_000)
QUICK = Size(entities=100_000)


def make_bodies(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Bodies of about 120 bytes of msgpack: user_id, published (naive UTC), title, tags."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    start = datetime(2024, 1, 1)
    return [
        {
            "user_id": rng.randrange(1, 100_000),
            "published": start + timedelta(seconds=rng.randrange(10**8), microseconds=n),
            "title": " ".join(rng.choice(words) for _ in range(6)),
            "tags": [rng.choice(words) for _ in range(3)],
        }
        for n in range(count)
    ]


def as_json(body: dict[str, Any]) -> str:
    return json.dumps({**body, "published": body["published"].isoformat()})


# -- the writers, each in a process of its own ----------------------------------------------------


class Writer:
    """A process that writes as fast as it can and times every operation, until stopped.

    ``side`` is "store" (store.put of new entities and of existing ids) or "json" (raw INSERTs
    and UPDATEs of json_entries); every other operation is an update of a random existing one.
    """

    def __init__(self, side: str, url: str, targets: list[Any], bodies: list[dict[str, Any]]):
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop = context.Event(), context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_write, args=(side, url, targets, bodies, self._ready, self._stop, send)
        )
        self.ops: list[tuple[float, float, str]] = []  # (started, seconds, "insert" | "update")

    @contextmanager
    def running(self) -> Iterator[Writer]:
        """Start the writer, let it warm up, run the block, let it cool down, collect."""
        self._process.start()
        try:
            if not self._ready.wait(60):
                raise RuntimeError("the writer process did not start")
            time.sleep(WARM)
            yield self
            time.sleep(COOL)
        finally:
            self._stop.set()
            if self._receive.poll(60):
                self.ops = self._receive.recv()
            self._process.join(30)

    def during(self, start: float, end: float, op: str | None = None) -> list[float]:
        """Latencies in ms of the operations under way at any moment between start and end."""
        return sorted(
            seconds * 1000
            for began, seconds, kind in self.ops
            if began <= end and began + seconds >= start and op in (None, kind)
        )


def _write(
    side: str,
    url: str,
    targets: list[Any],
    bodies: list[dict[str, Any]],
    ready: Any,
    stop: Any,
    send: Any,
) -> None:
    rng = random.Random(3)
    write = _store_writer(url) if side == "store" else _json_writer(url)
    write("insert", None, bodies[0])  # connects, untimed
    ops: list[tuple[float, float, str]] = []
    ready.set()
    n = 0
    while not stop.is_set():
        op = "update" if n % 2 else "insert"
        body, n = bodies[n % len(bodies)], n + 1
        began = time.monotonic()
        write(op, rng.choice(targets), body)
        ops.append((began, time.monotonic() - began, op))
    send.send(ops)


def _store_writer(url: str) -> Callable[[str, Any, dict[str, Any]], None]:
    store = schemaless.connect(url)

    def write(op: str, target: Any, body: dict[str, Any]) -> None:
        store.put(KIND, body, id=target if op == "update" else None)

    return write


def _json_writer(url: str) -> Callable[[str, Any, dict[str, Any]], None]:
    cursor = _common.raw_connection(url, autocommit=True).cursor()

    def write(op: str, target: Any, body: dict[str, Any]) -> None:
        if op == "update":
            cursor.execute(JSON_UPDATE, (as_json(body), target))
        else:
            cursor.execute(JSON_INSERT, (as_json(body),))

    return write


# -- filling ----------------------------------------------------------------------------------


def fill_store(store: schemaless.Store, bodies: list[dict[str, Any]], count: int) -> list[Any]:
    """Put ``count`` entities, then empty the change log; returns a sample of their ids."""
    sample: list[Any] = []
    for start in range(0, count, FILL_BATCH):
        made = store.put_many(KIND, _cycle(bodies, start, min(FILL_BATCH, count - start)))
        sample += [entity.id for entity in made[::SAMPLE_EVERY]]
    with store.shards.engines[0].begin() as conn:
        conn.exec_driver_sql("TRUNCATE TABLE entity_changes")
    return sample


def fill_json(url: str, bodies: list[dict[str, Any]], count: int) -> None:
    connection = _common.raw_connection(url, autocommit=False)
    cursor = connection.cursor()
    cursor.execute(JSON_TABLE)
    docs = [(as_json(body),) for body in bodies]
    for start in range(0, count, FILL_BATCH):
        cursor.executemany(JSON_INSERT, _cycle(docs, start, min(FILL_BATCH, count - start)))
        connection.commit()
    connection.close()


def _cycle(items: list[Any], start: int, count: int) -> list[Any]:
    return [items[(start + i) % len(items)] for i in range(count)]


# -- the measured work ------------------------------------------------------------------------


def our_backfill(store: schemaless.Store) -> int:
    return Backfill(store, INDEX.name, progress=False, install_signal_handlers=False).run()


class RawCopy:
    """The backfill's work with mysqlclient and msgpack alone: the anchor of ``backfill``."""

    def __init__(self, url: str) -> None:
        self.connection = _common.raw_connection(url, autocommit=False)
        cursor = self.connection.cursor()
        cursor.execute(f"CREATE TABLE raw_copy LIKE index_{INDEX.name}")
        cursor.execute("SELECT MAX(added_id) FROM entities WHERE kind = %s", (KIND,))
        self.end = cursor.fetchone()[0]
        self.connection.commit()

    def run(self) -> int:
        cursor, position, copied = self.connection.cursor(), 0, 0
        while True:
            cursor.execute(SCAN, (KIND, position, self.end, COPY_BATCH))
            found = cursor.fetchall()
            if not found:
                return copied
            rows = []
            for _added, entity_id, version, blob in found:
                body = _decode(blob)
                rows.append((body.get("user_id"), body.get("published"), entity_id, version))
            cursor.executemany(COPY_INSERT, rows)
            self.connection.commit()
            position, copied = found[-1][0], copied + len(found)

    def close(self) -> None:
        self.connection.close()


def _decode(blob: bytes) -> dict[str, Any]:
    """Our envelope's plain-msgpack case: two header bytes, then msgpack with datetimes as ext 1."""
    if blob[:2] != b"\x01\x00":
        raise ValueError("not a plain msgpack body")
    return msgpack.unpackb(blob[2:], raw=False, ext_hook=_ext)


def _ext(code: int, data: bytes) -> Any:
    if code != 1:
        raise ValueError(f"unexpected msgpack extension {code}")
    return datetime.fromisoformat(data.decode())


def alter(url: str, column: str) -> None:
    connection = _common.raw_connection(url, autocommit=True)
    connection.cursor().execute(ALTER.format(column))
    connection.close()


def undo_alter(url: str) -> None:
    connection = _common.raw_connection(url, autocommit=True)
    connection.cursor().execute(UNDO_ALTER)
    connection.close()


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Timed:
    """One piece of measured work: how long it took, what it did, what its writer saw."""

    started: float
    seconds: float
    count: int
    writer: Writer

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def latencies(self, op: str | None = None) -> list[float]:
        return self.writer.during(self.started, self.started + self.seconds, op)


def timed(writer: Writer, work: Callable[[], int | None]) -> Timed:
    """Run ``work`` while ``writer`` writes; the writer's operations during it are kept.

    ``work`` returns how many rows it made, or None (an ALTER, which says nothing).
    """
    with writer.running():
        started = time.monotonic()
        count = work() or 0
        seconds = time.monotonic() - started
    return Timed(started, seconds, count, writer)


def p99(latencies: list[float]) -> float:
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def describe(label: str, run: Timed, unit: str = "") -> None:
    """One line of detail on stderr: the work, and the writer's latencies by operation."""
    parts = [f"{label}: {run.seconds:.2f} s"]
    if unit:
        parts[0] += f", {run.count:,} {unit}, {run.rate:,.0f}/s"
    for op in ("insert", "update"):
        lat = run.latencies(op)
        if lat:
            parts.append(f"{op}s {len(lat):,} p50 {lat[len(lat) // 2]:.2f} p99 {p99(lat):.2f}")
            parts[-1] += f" max {lat[-1]:.1f} ms"
    print("  " + "; ".join(parts), file=sys.stderr)


def measure(server: str, size: Size, stack: ExitStack) -> list[_common.Result]:
    bodies = make_bodies(4096)
    writes = make_bodies(4096, seed=13)
    url = stack.enter_context(_common.database(server, "bench_backfill"))
    json_url = stack.enter_context(_common.database(server, "bench_backfill_json"))
    store = schemaless.connect(url)
    stack.callback(store.close)
    store.migrate()

    began = time.monotonic()
    print(f"filling the store with {size.entities:,} entities ...", file=sys.stderr)
    targets = fill_store(store, bodies, size.entities)
    print(f"  {time.monotonic() - began:.1f} s", file=sys.stderr)
    began = time.monotonic()
    print(f"filling json_entries with {size.entities:,} rows ...", file=sys.stderr)
    fill_json(json_url, bodies, size.entities)
    print(f"  {time.monotonic() - began:.1f} s", file=sys.stderr)

    assert store.add_index(INDEX) == "building"
    print("measuring (writer latencies in ms, by operation):", file=sys.stderr)
    raw = RawCopy(url)
    stack.callback(raw.close)
    copy = timed(Writer("store", url, targets, writes), raw.run)
    describe("raw copy", copy, "rows")
    ours = timed(Writer("store", url, targets, writes), lambda: our_backfill(store))
    describe("our backfill", ours, "entities")

    json_ids = list(range(1, size.entities + 1, SAMPLE_EVERY))
    virtual = timed(Writer("json", json_url, json_ids, writes), lambda: alter(json_url, "VIRTUAL"))
    describe("ALTER ... VIRTUAL, ADD INDEX", virtual)
    undo_alter(json_url)
    stored = timed(Writer("json", json_url, json_ids, writes), lambda: alter(json_url, "STORED"))
    describe("ALTER ... STORED, ADD INDEX", stored)

    mine = ours.latencies()
    return [
        _common.Result("backfill", ours.rate, copy.rate, "entities/s"),
        _common.Result("write_p99_ms", p99(mine), p99(virtual.latencies()), "ms"),
        _common.Result("write_max_ms", mine[-1], virtual.latencies()[-1], "ms"),
        _common.Result("write_max_ms_stored", mine[-1], stored.latencies()[-1], "ms"),
    ]


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__, argv)
    size = QUICK if args.quick else FULL
    with ExitStack() as stack:
        server = stack.enter_context(_common.mysql_server(args.url))
        results = measure(server, size, stack)
    _common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
