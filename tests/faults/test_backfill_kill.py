"""A real `schemaless backfill` process, SIGKILLed at random moments and resumed, ends exact."""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import actual_rows, expected_rows

BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str", "n": "int"})
COUNT = 2000


def _position(store: schemaless.Store) -> int:
    return store.registry.get(BY_TAG.name).position


def _wait_for_progress(store: schemaless.Store, past: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _position(store) <= past:
        assert time.monotonic() < deadline, "the backfill stored no new position"
        time.sleep(0.005)


def _write_some(store: schemaless.Store, rnd: random.Random, ids: list[Any]) -> None:
    """Writes between the kills: they reach the index through the indexer, not the backfill."""
    for n in range(20):
        store.put("entry", {"tags": [f"u{n}"], "n": n}, id=rnd.choice(ids))
    store.delete(rnd.choice(ids))
    ids.append(store.put("entry", {"tags": ["new"], "n": -1}).id)


def test_a_backfill_killed_at_random_moments_and_resumed_ends_equal_to_a_recompute(
    store: schemaless.Store, db_url: str, cli: Callable[..., Any]
) -> None:
    rnd = random.Random()
    bodies = [{"tags": ["a", f"t{n % 50}"], "n": n} for n in range(COUNT)]
    ids = [e.id for e in store.put_many("entry", bodies)]
    Worker(store, burst=True, install_signal_handlers=False).run()
    assert store.add_index(BY_TAG) == "building"
    positions = [0]
    for _ in range(3):
        daemon = cli("backfill", BY_TAG.name, "--batch-size=50", "--rate=2000", url=db_url)
        _wait_for_progress(store, positions[-1])
        time.sleep(rnd.uniform(0.0, 0.15))
        daemon.kill()
        positions.append(_position(store))
        assert positions[-1] > positions[-2]  # each run resumed, then got further
        _write_some(store, rnd, ids)
    assert store.registry.get(BY_TAG.name).state == "building"
    done_before = store.registry.get(BY_TAG.name).done
    final = cli("backfill", BY_TAG.name, "--batch-size=50", url=db_url)
    assert final.wait(timeout=60) == 0, final.output
    match = re.search(r"backfilled (\d+) entities", final.output)
    assert match, final.output
    indexed = int(match.group(1))
    assert 0 < indexed < COUNT and store.registry.get(BY_TAG.name).done == done_before + indexed
    Worker(store, burst=True, install_signal_handlers=False).run()
    assert store.registry.get(BY_TAG.name).state == "ready"
    assert actual_rows(store, BY_TAG) == expected_rows(store, BY_TAG)


def test_sigterm_stops_a_backfill_after_its_batch_and_keeps_its_position(
    store: schemaless.Store, db_url: str, cli: Callable[..., Any]
) -> None:
    store.put_many("entry", [{"tags": ["a"], "n": n} for n in range(COUNT)])
    store.add_index(BY_TAG)
    daemon = cli("backfill", BY_TAG.name, "--batch-size=50", "--rate=1000", url=db_url)
    _wait_for_progress(store, 0)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0, daemon.output
    entry = store.registry.get(BY_TAG.name)
    assert entry.state == "building" and 0 < entry.done < COUNT
    assert f"backfilled {entry.done} entities" in daemon.output
    assert actual_rows(store, BY_TAG).total() == entry.done
