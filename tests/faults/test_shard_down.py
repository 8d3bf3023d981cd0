"""A shard SIGKILLed, then one SIGSTOPped: calls on it typed and in time, the other unaffected.

Two shards on two servers: s0 is a database on the test session's server, s1 one on a private
``mariadbd`` of this module's, which the tests kill (SIGKILL: connections refused, then InnoDB
recovery on restart) and stop (SIGSTOP: connections accepted, nothing answered). While s1 is
bad, every public call that needs it raises ShardUnavailable naming it within the timeout plus a
second; calls on s0 alone run as usual. Once s1 is back, everything works again, nothing that
was acknowledged is lost, and the indexer catches up to an exact index.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from schemaless_indexer.cleaner import Cleaner
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index, ShardUnavailable
from schemaless.status import status
from schemaless.tables import entity_changes
from schemaless.testing import (
    MySQLServer,
    actual_rows,
    create_database,
    drop_database,
    expected_rows,
)
from tests.faults.proxy import timed

TIMEOUT = 1.0
BY_USER = Index("down_by_user", kind="entry", fields={"user_id": "int", "n": "int"})
LATER = Index("down_later", kind="entry", fields={"n": "int"})
HEALTHY_SECONDS = 0.9 * TIMEOUT  # a call on s0 alone takes ms; below one wait on s1

Ledger = dict[uuid.UUID, tuple[int, dict[str, Any]] | None]  # acknowledged: version and body


@pytest.fixture
def bad_server(private_server: MySQLServer) -> MySQLServer:
    return private_server


@pytest.fixture
def urls(mysql_server: str, bad_server: MySQLServer) -> Iterator[dict[str, str]]:
    """The shards: s0 on the session's server, s1 on the one a test breaks."""
    name = f"t_{secrets.token_hex(8)}"
    urls = {"s0": create_database(mysql_server, name), "s1": bad_server.create_database(name)}
    yield urls
    bad_server.resume()
    bad_server.start()  # whatever the test left it in
    drop_database(mysql_server, name)
    bad_server.drop_database(name)


@pytest.fixture
def store(urls: dict[str, str]) -> Iterator[schemaless.Store]:
    store = schemaless.connect(urls, timeout=TIMEOUT)
    store.migrate()
    store.add_index(BY_USER)
    yield store
    store.close()


def _ids_on(store: schemaless.Store, shard: int, count: int) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    while len(found) < count:
        candidate = uuid.uuid4()
        if store.shards.shard_for_id(candidate.bytes) == shard:
            found.append(candidate)
    return found


def _write(store: schemaless.Store, ledger: Ledger, ids: list[uuid.UUID], n: int) -> None:
    for entity_id in ids:
        body = {"user_id": n % 3, "n": n}
        ledger[entity_id] = (store.put("entry", body, id=entity_id).version, body)


def _touching_s1(store: schemaless.Store, on_s0: uuid.UUID, on_s1: uuid.UUID) -> dict[str, Any]:
    """Every public call that needs s1 (for the ids given), by name."""

    def query() -> schemaless.Query:
        return store.query("entry").filter(user_id=1)

    return {
        "get": lambda: store.get(on_s1),
        "get_many": lambda: store.get_many([on_s0, on_s1]),
        "put with id": lambda: store.put("entry", {"user_id": 1, "n": -2}, id=on_s1),
        "put with expect_version": lambda: store.put("entry", {}, id=on_s1, expect_version=2),
        "put_many": lambda: store.put_many("entry", [{"user_id": 1, "n": -1}] * 30),
        "delete": lambda: store.delete(on_s1),
        "query": lambda: list(query()),
        "query count": lambda: query().count(),
        "query first": lambda: query().order_by("n").first(),
        "listing": lambda: list(store.query("entry")),
        "scan": lambda: list(store.query("entry").scan().filter(n=1)),
        "pending_changes": store.pending_changes,
        "wait_for_indexes": lambda: store.wait_for_indexes(timeout=0.1),
        "migrate": store.migrate,
        "worker --burst": lambda: Worker(store, burst=True, install_signal_handlers=False).run(),
        "verify": lambda: Cleaner(store, install_signal_handlers=False).verify(),
        "status": lambda: status(store),
    }


def _on_s0_only(store: schemaless.Store, ledger: Ledger, ids: list[uuid.UUID]) -> dict[str, Any]:
    """Public calls that need s0 alone; the writes among them are added to the ledger."""

    def put() -> None:
        _write(store, ledger, ids[:1], 7)

    def delete() -> None:
        assert store.delete(ids[1])
        ledger[ids[1]] = None

    return {
        "get": lambda: store.get(ids[0]),
        "get_many": lambda: store.get_many(ids[2:]),
        "put with id": put,
        "delete": delete,
        "indexes": store.indexes,
    }


def _assert_s1_unavailable(calls: dict[str, Any]) -> None:
    for name, call in calls.items():
        seconds, exc = timed(call)
        assert isinstance(exc, ShardUnavailable), f"{name}: {exc!r}"
        assert exc.shard == "s1", f"{name}: {exc!r}"
        assert seconds < TIMEOUT + 1, f"{name} took {seconds:.2f} s"


def _assert_s0_serves(calls: dict[str, Any]) -> None:
    for name, call in calls.items():
        seconds, exc = timed(call)
        assert exc is None, f"{name}: {exc!r}"
        assert seconds < HEALTHY_SECONDS, f"{name} took {seconds:.2f} s"


def _pending_on(store: schemaless.Store, shard: int) -> int:
    with store.shards[shard].read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(entity_changes)).scalar())


def _drain(store: schemaless.Store, seconds: float = 20.0) -> None:
    """Run the indexer until the change log is empty (at most ``seconds``: never hang)."""
    worker = Worker(store, burst=True, install_signal_handlers=False)
    timer = threading.Timer(seconds, worker.stop)
    timer.start()
    try:
        worker.run()
    finally:
        timer.cancel()
    assert store.pending_changes() == 0, "the indexer did not drain the change log"


def _once_back(store: schemaless.Store, entity_id: uuid.UUID, *, at_once: bool) -> None:
    """Wait for s1 to answer again: at once after a restart (the dead connections are
    replaced within the call), within a timeout after SIGCONT (the breaker waits that long)."""
    deadline = time.monotonic() + TIMEOUT + 5
    while (exc := timed(lambda: store.get(entity_id))[1]) is not None:
        assert isinstance(exc, ShardUnavailable), repr(exc)
        assert not at_once, f"the first call after the restart failed: {exc}"
        assert time.monotonic() < deadline, f"s1 never came back: {exc}"
        time.sleep(0.05)


def _assert_nothing_lost(store: schemaless.Store, ledger: Ledger) -> None:
    found = store.get_many(ledger)
    for entity_id, acknowledged in ledger.items():
        if acknowledged is None:
            assert entity_id not in found, f"{entity_id} was deleted"
        else:
            entity = found[entity_id]
            assert (entity.version, entity.body) == acknowledged, entity_id


def _run_outage(
    store: schemaless.Store,
    break_s1: Callable[[], None],
    mend_s1: Callable[[], None],
    *,
    back_at_once: bool,
) -> None:
    ledger: Ledger = {}
    s0, s1 = _ids_on(store, 0, 30), _ids_on(store, 1, 30)
    _write(store, ledger, s0 + s1, 1)
    _drain(store)
    _write(store, ledger, s0 + s1, 2)  # changes left for the indexer, on both shards

    break_s1()
    _assert_s1_unavailable(_touching_s1(store, s0[0], s1[0]))
    assert _pending_on(store, 0) == 0  # the worker above drained s0 while s1 was down
    _assert_s0_serves(_on_s0_only(store, ledger, s0))
    mend_s1()
    _once_back(store, s1[0], at_once=back_at_once)
    _assert_nothing_lost(store, ledger)
    _write(store, ledger, s1[:5], 3)
    _drain(store)
    assert actual_rows(store, BY_USER) == expected_rows(store, BY_USER)
    assert Cleaner(store, install_signal_handlers=False).verify().is_clean
    _assert_nothing_lost(store, ledger)


def test_a_killed_shard_is_unavailable_at_once_and_the_other_serves(
    store: schemaless.Store, bad_server: MySQLServer, rounds: int
) -> None:
    for _ in range(rounds):
        _run_outage(store, bad_server.kill, bad_server.start, back_at_once=True)


def test_a_restart_between_two_calls_costs_the_next_call_nothing(
    store: schemaless.Store, bad_server: MySQLServer
) -> None:
    """Kept and pooled connections all died with the server: the first call replaces them."""
    ledger: Ledger = {}
    s1 = _ids_on(store, 1, 3)
    _write(store, ledger, s1, 1)  # the Core path: pooled connections
    store.get_many(s1)  # the fast path: a kept read connection
    store.put_many("entry", [{"n": 0}] * 4)  # and a kept write connection
    bad_server.kill()
    bad_server.start()
    calls = {
        "get": lambda: store.get(s1[0]),
        "put with id": lambda: _write(store, ledger, s1[1:2], 2),
        "put_many": lambda: store.put_many("entry", [{"n": 1}] * 4),
        "query": lambda: list(store.query("entry").filter(user_id=1)),
    }
    for name, call in calls.items():
        bad_server.kill()
        bad_server.start()
        _, exc = timed(call)
        assert exc is None, f"{name} after a restart: {exc!r}"
    _assert_nothing_lost(store, ledger)


def test_a_stopped_shard_is_unavailable_within_the_timeout_and_the_other_serves(
    store: schemaless.Store, bad_server: MySQLServer, rounds: int
) -> None:
    for _ in range(rounds):
        _run_outage(store, bad_server.pause, bad_server.resume, back_at_once=False)


def test_a_store_opened_while_a_shard_is_down_serves_the_other(
    store: schemaless.Store, urls: dict[str, str], bad_server: MySQLServer
) -> None:
    """A process that starts (or restarts) during an outage must still write the healthy shard."""
    ledger: Ledger = {}
    s0 = _ids_on(store, 0, 5)
    _write(store, ledger, s0, 1)
    bad_server.kill()
    fresh = schemaless.connect(urls, timeout=TIMEOUT)
    try:
        _assert_s0_serves(_on_s0_only(fresh, ledger, s0))
    finally:
        fresh.close()


def test_an_add_index_cut_short_by_an_outage_completes_when_run_again(
    store: schemaless.Store, bad_server: MySQLServer
) -> None:
    ledger: Ledger = {}
    s1 = _ids_on(store, 1, 5)
    _write(store, ledger, s1, 1)
    bad_server.kill()
    with pytest.raises(ShardUnavailable):
        store.add_index(LATER)
    bad_server.start()
    _once_back(store, s1[0], at_once=True)
    store.add_index(LATER)  # as the error invites: run it again
    _write(store, ledger, s1, 2)
    _drain(store, seconds=3.0)
    assert actual_rows(store, LATER) == expected_rows(store, LATER)
