"""Online backfill of a new index on SQLite and MySQL: alone, under writers, stopped, resumed."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from schemaless_indexer.backfill import Backfill
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.status import status
from schemaless.testing import actual_rows, expected_rows, run_command

ROOT = Path(__file__).resolve().parents[2]
BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})


def backfill(
    store: schemaless.Store, name: str, *, rate: float | None = None, batch_size: int = 1000
) -> Backfill:
    return Backfill(
        store,
        name,
        rate=rate,
        batch_size=batch_size,
        progress=False,
        install_signal_handlers=False,
    )


def drain(store: schemaless.Store) -> None:
    Worker(store, burst=True, install_signal_handlers=False).run()


def state(store: schemaless.Store, name: str) -> str:
    return store.registry.get(name).state


def test_backfill_indexes_what_was_stored_and_marks_the_index_ready(
    store: schemaless.Store,
) -> None:
    store.put_many("entry", [{"user_id": n % 7, "n": n, "tags": ["a", str(n)]} for n in range(120)])
    drain(store)
    assert store.add_index(BY_TAG) == "building"
    with pytest.raises(schemaless.IndexNotReady):
        list(store.query("entry").filter(tags="a"))
    assert backfill(store, BY_TAG.name, batch_size=50).run() == 120
    assert state(store, BY_TAG.name) == "ready"
    assert actual_rows(store, BY_TAG) == expected_rows(store, BY_TAG)
    assert store.query("entry").filter(tags="a").count() == 120


def test_deleted_entities_are_skipped(store: schemaless.Store) -> None:
    kept, gone = store.put_many("entry", [{"tags": ["kept"]}, {"tags": ["gone"]}])
    store.delete(gone.id)
    drain(store)
    store.add_index(BY_TAG)
    assert backfill(store, BY_TAG.name).run() == 1
    assert {row[0] for row in actual_rows(store, BY_TAG)} == {"kept"}


def test_backfill_under_concurrent_writers_ends_equal_to_a_recompute(
    store: schemaless.Store,
) -> None:
    ids = [e.id for e in store.put_many("entry", [{"user_id": 0, "n": n} for n in range(400)])]
    drain(store)
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    stop = threading.Event()

    def write(seed: int) -> None:
        rnd = random.Random(seed)
        while not stop.is_set():
            body = {"user_id": rnd.randrange(5), "n": rnd.randrange(100), "tags": ["t", str(seed)]}
            roll = rnd.random()
            if roll < 0.3:
                ids.append(store.put("entry", body).id)
            elif roll < 0.4:
                store.delete(rnd.choice(ids))
            else:
                store.put("entry", body, id=rnd.choice(ids))

    # The indexer runs meanwhile, as in production: it maintains the building indexes.
    worker = Worker(store, install_signal_handlers=False)
    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(3)]
    threads.append(threading.Thread(target=worker.run))
    for t in threads:
        t.start()
    try:
        for index in (BY_USER, BY_TAG):
            assert backfill(store, index.name, batch_size=25, rate=1500).run() > 0
    finally:
        stop.set()
        worker.stop()
        for t in threads:
            t.join()
    assert worker.stats.applied > 0
    drain(store)
    for index in (BY_USER, BY_TAG):
        assert state(store, index.name) == "ready"
        assert actual_rows(store, index) == expected_rows(store, index), index.name


def test_a_stopped_backfill_shows_its_progress_and_resumes_where_it_stopped(
    store: schemaless.Store,
) -> None:
    store.put_many("entry", [{"tags": [str(n)]} for n in range(200)])
    store.add_index(BY_TAG)
    first = backfill(store, BY_TAG.name, batch_size=10, rate=400)
    runner = threading.Thread(target=first.run)
    runner.start()
    deadline = time.monotonic() + 10
    while store.registry.get(BY_TAG.name).done < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop()
    runner.join(timeout=5)
    [shown] = status(store)["indexes"]
    assert shown["state"] == "building"
    assert 30 <= shown["backfill_done"] < shown["backfill_total"] == 200
    assert first.indexed == shown["backfill_done"]
    assert backfill(store, BY_TAG.name, batch_size=50).run() == 200 - first.indexed
    assert state(store, BY_TAG.name) == "ready"
    assert actual_rows(store, BY_TAG) == expected_rows(store, BY_TAG)


def test_rate_bounds_the_entities_per_second(store: schemaless.Store) -> None:
    store.put_many("entry", [{"tags": ["x"]}] * 100)
    store.add_index(BY_TAG)
    started = time.monotonic()
    backfill(store, BY_TAG.name, batch_size=10, rate=400).run()
    assert time.monotonic() - started >= 100 / 400 - 0.05


def test_a_ready_index_needs_no_backfill(store: schemaless.Store) -> None:
    assert store.add_index(BY_TAG) == "ready"  # no entity of the kind: ready at once
    assert backfill(store, BY_TAG.name).run() == 0


def test_an_unknown_index_raises_index_required(store: schemaless.Store) -> None:
    with pytest.raises(schemaless.IndexRequired):
        backfill(store, "nope")


def test_a_batch_size_over_a_thousand_is_refused(store: schemaless.Store) -> None:
    store.add_index(BY_TAG)
    with pytest.raises(schemaless.ConfigurationError):
        backfill(store, BY_TAG.name, batch_size=1001)


def test_each_shard_keeps_its_own_position(tmp_path: Path) -> None:
    store = schemaless.connect([f"sqlite:///{tmp_path / f's{n}.db'}" for n in range(2)])
    store.migrate()
    store.put_many("entry", [{"user_id": n, "n": n} for n in range(100)])
    store.add_index(BY_USER)
    assert backfill(store, BY_USER.name, batch_size=7).run() == 100
    done = [store.registry.get(BY_USER.name, shard).done for shard in range(2)]
    assert sum(done) == 100 and min(done) > 0
    assert actual_rows(store, BY_USER) == expected_rows(store, BY_USER)
    store.close()


def test_index_add_with_backfill_builds_it_and_status_shows_it_ready(
    store: schemaless.Store, db_url: str
) -> None:
    store.put_many("entry", [{"tags": ["x"]}] * 20)
    added = run_command(
        "index", "add", "entry_by_tag", "--kind=entry", "--field=tags:str", "--backfill", url=db_url
    )
    assert added.returncode == 0, added.stderr
    assert "backfilled 20 entities" in added.stdout
    shown = run_command("status", url=db_url)
    assert "entry_by_tag" in shown.stdout and "ready" in shown.stdout
