"""The indexer daemon under races, kills and signals: real processes, real databases."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import actual_rows, expected_rows

BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})

Cli = Callable[..., Any]


def _assert_indexes_match(store: schemaless.Store) -> None:
    for index in (BY_USER, BY_TAG):
        assert actual_rows(store, index) == expected_rows(store, index), index.name


def _update_randomly(store: schemaless.Store, ids: list, count: int, threads: int = 4) -> None:
    def run(seed: int) -> None:
        rnd = random.Random(seed)
        for n in range(count // threads):
            entity_id = rnd.choice(ids)
            body = {"user_id": rnd.randrange(10), "n": n, "tags": rnd.sample("abcdef", 2)}
            if rnd.random() < 0.05:
                store.delete(entity_id)
            else:
                store.put("entry", body, id=entity_id)

    workers = [threading.Thread(target=run, args=(seed,)) for seed in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def test_two_workers_racing_over_many_updates_leave_every_index_exact(
    store: schemaless.Store, db_url: str, cli: Cli
) -> None:
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    ids = [e.id for e in store.put_many("entry", [{"user_id": 0, "n": 0}] * 100)]
    workers = [cli("indexer", "--batch-size", "50", url=db_url) for _ in range(2)]
    for w in workers:
        w.wait_for("worker started")
    _update_randomly(store, ids, 10_000)
    assert store.wait_for_indexes(timeout=120)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=10) for w in workers] == [0, 0], workers[0].output[-2000:]
    _assert_indexes_match(store)


def test_a_worker_killed_mid_batch_and_restarted_ends_the_same(
    store: schemaless.Store, db_url: str, cli: Cli
) -> None:
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    ids = [e.id for e in store.put_many("entry", [{"user_id": 1, "n": 0}] * 200)]
    _update_randomly(store, ids, 2000, threads=2)
    before = store.pending_changes()
    for _ in range(3):
        worker = cli("indexer", "--batch-size", "20", url=db_url)
        worker.wait_for("worker started")
        time.sleep(random.uniform(0.05, 0.3))
        worker.kill()
    assert store.pending_changes() < before  # the killed workers did commit some batches
    restarted = cli("indexer", "--burst", url=db_url)
    assert restarted.wait(timeout=120) == 0
    assert store.pending_changes() == 0
    _assert_indexes_match(store)


def test_sigterm_stops_a_worker_within_a_second(
    store: schemaless.Store, db_url: str, cli: Cli
) -> None:
    worker = cli("indexer", url=db_url)
    worker.wait_for("worker started")
    time.sleep(0.3)  # let it settle into its idle wait
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 1.0


def test_burst_exits_once_the_log_is_empty(store: schemaless.Store, db_url: str, cli: Cli) -> None:
    store.add_index(BY_TAG)
    store.put_many("entry", [{"tags": ["x"]}] * 30)
    assert cli("indexer", "--burst", "--workers", "2", url=db_url).wait(timeout=60) == 0
    assert store.pending_changes() == 0
    assert actual_rows(store, BY_TAG).total() == 30


def test_a_change_committed_after_a_later_one_is_still_applied(mysql_url: str) -> None:
    store = schemaless.connect(mysql_url)
    store.migrate()
    store.add_index(BY_TAG)
    early = schemaless.ids.new_id()
    engine = store.shards.engines[0]
    # Hold a write open, so its change row has the lower seq but commits last.
    with engine.begin() as held:
        store._insert(held, [(early.bytes, "entry", store.codec.encode({"tags": ["early"]}))])
        store._after_write(held, [(early.bytes, "entry", 1)])
        store.put("entry", {"tags": ["late"]})
        Worker(store, burst=True, install_signal_handlers=False).run()
        assert {r[0] for r in actual_rows(store, BY_TAG)} == {"late"}
    Worker(store, burst=True, install_signal_handlers=False).run()
    assert {r[0] for r in actual_rows(store, BY_TAG)} == {"early", "late"}
    store.close()


def test_moves_then_a_delete_leave_no_rows_behind(store: schemaless.Store) -> None:
    """Versions whose entity yields no rows (the delete) still win over every older version."""
    store.add_index(BY_USER)
    e = store.put("entry", {"user_id": 1, "n": 0})
    Worker(store, burst=True, install_signal_handlers=False).run()
    for n in range(3):
        store.put("entry", {"user_id": n + 2, "n": n}, id=e.id)
    store.delete(e.id)
    Worker(store, burst=True, install_signal_handlers=False, max_batches=1).run()
    assert not actual_rows(store, BY_USER)
