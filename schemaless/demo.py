"""``schemaless demo``: the whole life of a store in one run, printing what it does.

It stores a few thousand entities, reads them back, shows a compare-and-set conflict, then adds
an index to the live store (a CREATE TABLE and a backfill with a progress bar, while a writer
keeps writing), drains the change log with the indexer, answers queries through the index and
verifies that the index matches the entities.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import Conflict, IndexNotReady
from .index import Index
from .store import Store

KIND = "demo_entry"
INDEX = Index(
    "demo_by_user",
    kind=KIND,
    fields={"user_id": "int", "published": "datetime"},
    shard_on="user_id",
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@contextmanager
def step(title: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"\n== {title}", flush=True)
    yield
    print(f"   ({(time.perf_counter() - started) * 1000:.0f} ms)", flush=True)


def run(store: Store, *, count: int = 5000) -> int:
    """Run the demo on ``store``; returns the exit status (0 when the index verifies clean)."""
    names = ", ".join(f"{s.name}={s.engine.url!r}" for s in store.shards)
    print(f"schemaless demo on {names}")
    with step("migrate: create the fixed tables (idempotent)"):
        store.migrate()
        if any(index.name == INDEX.name for index, _ in store.indexes()):
            store.drop_index(INDEX.name)
            print(f"   dropped {INDEX.name} from an earlier run, to add it online again")
    ids = _write(store, count)
    _read(store, ids)
    _conflict(store, ids[0])
    _add_index_online(store)
    _drain(store)
    _query(store)
    return _verify(store)


RUN = time.strftime("%H:%M:%S")  # titles say which run wrote them: a reused store keeps old ones


def _body(rnd: random.Random, n: int) -> dict[str, Any]:
    return {
        "user_id": rnd.randrange(50),
        "title": f"entry {n} of the run at {RUN}",
        "tags": rnd.sample(["db", "python", "django", "mysql", "sqlite"], 2),
        "published": T0 + dt.timedelta(minutes=n),
    }


def _write(store: Store, count: int) -> list[Any]:
    rnd = random.Random(7)
    with step(f"put_many: store {count} entities (no schema, no DDL)"):
        started = time.perf_counter()
        made = store.put_many(KIND, [_body(rnd, n) for n in range(count)])
        rate = count / (time.perf_counter() - started)
        print(f"   stored {len(made)} entities, {rate:,.0f}/s")
    return [e.id for e in made]


def _read(store: Store, ids: list[Any]) -> None:
    with step("get / get_many: read them back"):
        started = time.perf_counter()
        for entity_id in ids[:500]:
            store.get(entity_id)
        each = (time.perf_counter() - started) / 500 * 1e6
        found = store.get_many(ids)
        print(f"   get: {each:.0f} µs each; get_many({len(ids)}): {len(found)} found")


def _conflict(store: Store, entity_id: Any) -> None:
    with step("compare-and-set: two writers, one version"):
        e = store.get(entity_id)
        store.put(KIND, {**e.body, "title": "first writer"}, id=e.id, expect_version=e.version)
        try:
            store.put(KIND, {**e.body, "title": "second"}, id=e.id, expect_version=e.version)
        except Conflict as exc:
            print(f"   second writer got Conflict: {exc}")
        print(f"   kept: {store.get(entity_id)['title']!r} at version {e.version + 1}")


def _add_index_online(store: Store) -> None:
    from schemaless_indexer.backfill import Backfill

    with step(f"add_index {INDEX.name}: CREATE TABLE + online backfill while writing"):
        print(f"   state after add_index: {store.add_index(INDEX)}")
        try:
            list(store.query(KIND).filter(user_id=1))
        except IndexNotReady as exc:
            print(f"   a query meanwhile: {type(exc).__name__}: {exc}")
        with _writer(store) as written:
            done = Backfill(store, INDEX.name, progress=True, install_signal_handlers=False).run()
        print(f"   backfilled {done} entities; {written()} more written during the backfill")


@contextmanager
def _writer(store: Store) -> Iterator[Callable[[], int]]:
    """A thread that keeps putting entities until the block ends."""
    stop, written = threading.Event(), [0]

    def write() -> None:
        rnd = random.Random(11)
        while not stop.is_set():
            store.put(KIND, _body(rnd, 100_000 + written[0]))
            written[0] += 1
            stop.wait(0.002)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield lambda: written[0]
    finally:
        stop.set()
        thread.join()


def _drain(store: Store) -> None:
    from schemaless_indexer.worker import Worker

    with step("indexer --burst: drain the change log into the index tables"):
        worker = Worker(store, burst=True, install_signal_handlers=False)
        worker.run()
        print(f"   applied {worker.stats.applied} changes in {worker.stats.batches} batches")


def _query(store: Store) -> None:
    with step("query through the index (every result re-checked against its entity)"):
        q = store.query(KIND).filter(user_id=7).order_by("-published")
        started = time.perf_counter()
        page = list(q[:5])
        took = (time.perf_counter() - started) * 1000
        print(f"   user 7, newest 5 of {q.count()} ({took:.1f} ms):")
        for e in page:
            print(f"     {e['published']:%Y-%m-%d %H:%M}  {e['title']}")
        after = list(q.after(page[-1])[:3])
        print(f"   next page starts at {after[0]['title']!r}" if after else "   no next page")
        recent = store.query(KIND).filter(user_id=7, published__gte=T0 + dt.timedelta(days=3))
        print(f"   user 7 since day 3: {recent.count()} entities")


def _verify(store: Store) -> int:
    from schemaless_indexer.cleaner import Cleaner

    with step(f"verify {INDEX.name} against the entities"):
        report = Cleaner(store, install_signal_handlers=False).verify(INDEX.name)
        print("   " + report.format().replace("\n", "\n   "))
    return 0 if report.is_clean else 1
