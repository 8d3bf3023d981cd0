"""`indexer --burst` returns when the change log is empty, not when nothing is claimable now."""

from __future__ import annotations

import threading
import time
from collections import Counter

from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import actual_rows, expected_rows

BY_USER = Index("by_user", kind="entry", fields={"user_id": "int"})


def test_burst_waits_for_rows_another_worker_holds(mysql_url: str) -> None:
    store = schemaless.connect(mysql_url)
    store.migrate()
    store.add_index(BY_USER)
    for n in range(5):
        store.put("entry", {"user_id": n})
    worker = Worker(store, burst=True, install_signal_handlers=False)
    with store.shards[0].engine.connect() as other:
        other.begin()  # another worker's claim: every change row locked, nothing claimable
        held = other.exec_driver_sql("SELECT seq FROM entity_changes FOR UPDATE").all()
        assert len(held) == 5
        runner = threading.Thread(target=worker.run)
        runner.start()
        time.sleep(1.0)
        assert runner.is_alive(), "burst returned while another worker still held rows"
        other.rollback()  # that worker dies: its rows come back
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert store.pending_changes() == 0
    assert actual_rows(store, BY_USER) == expected_rows(store, BY_USER)
    assert sum(Counter(actual_rows(store, BY_USER)).values()) == 5
    store.close()
