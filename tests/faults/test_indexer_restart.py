"""The daemons across their server's restarts: a real `schemaless indexer` (and `cleaner`)
process while its private mariadbd is SIGKILLed and started again, under a steady writer.

The daemon must not exit (no supervisor brings it back), must say what happened, and must catch
up once the server is back: every entity written before, between and after the restarts ends
in the index exactly (compared as multisets), and SIGTERM still stops it cleanly with exit 0.
The writer's acknowledged writes all survive; a write that failed failed with our error.
"""

from __future__ import annotations

import random
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index, OutcomeUnknown, ShardUnavailable
from schemaless.testing import MySQLServer, actual_rows, expected_rows

pytestmark = pytest.mark.mysql

TIMEOUT = 1.0
BY_USER = Index("restart_by_user", kind="entry", fields={"user_id": "int", "n": "int"})
BY_TAG = Index("restart_by_tag", kind="entry", fields={"tags": "str"})
ROUNDS = 2  # kills per test; times --rounds

Cli = Callable[..., Any]
Known = tuple[int, dict[str, Any]]  # an acknowledged write: version and body


@pytest.fixture
def server(private_server: MySQLServer) -> MySQLServer:
    return private_server


@pytest.fixture
def url(server: MySQLServer) -> Iterator[str]:
    name = f"t_{secrets.token_hex(8)}"
    url = server.create_database(name)
    yield url
    server.start()  # whatever the test left it in
    server.drop_database(name)


@pytest.fixture
def store(url: str) -> Iterator[schemaless.Store]:
    store = schemaless.connect(url, timeout=TIMEOUT)
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    yield store
    store.close()


class Writer(threading.Thread):
    """Puts and updates entities until stopped, noting what the store acknowledged.

    A write that fails must fail with ShardUnavailable; an OutcomeUnknown makes that entity's
    state unknown until a later write of it is acknowledged.
    """

    def __init__(self, store: schemaless.Store, ids: list[uuid.UUID]) -> None:
        super().__init__(daemon=True)
        self.store, self.ids = store, ids
        self.known: dict[uuid.UUID, Known | None] = {}  # None: the outcome is unknown
        self.failures: list[BaseException] = []
        self.acknowledged = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        rnd = random.Random()
        n = 0
        while not self._stop_event.is_set():
            n += 1
            entity_id = rnd.choice(self.ids) if rnd.random() < 0.7 else uuid.uuid4()
            body = {"user_id": rnd.randrange(5), "n": n, "tags": rnd.sample("abcde", 2)}
            try:
                version = self.store.put("entry", body, id=entity_id).version
            except Exception as exc:
                self.failures.append(exc)
                if isinstance(exc, OutcomeUnknown):
                    self.known[entity_id] = None
                time.sleep(0.01)
                continue
            self.known[entity_id] = (version, body)
            self.acknowledged += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def _assert_indexes_exact(store: schemaless.Store) -> None:
    for index in (BY_USER, BY_TAG):
        assert actual_rows(store, index) == expected_rows(store, index), index.name


def _restart_rounds(server: MySQLServer, daemon: Any, count: int) -> None:
    """SIGKILL the server and start it again, ``count`` times; the daemon lives through each."""
    for _ in range(count):
        time.sleep(0.4)  # writes and batches under way
        server.kill()
        time.sleep(1.2)  # the daemon polls a dead server: refused, logged, waits
        assert daemon.process.poll() is None, f"the daemon exited:\n{daemon.output[-3000:]}"
        server.start()


@pytest.mark.slow
def test_the_indexer_daemon_lives_through_server_restarts_and_catches_up(
    store: schemaless.Store, server: MySQLServer, url: str, cli: Cli, rounds: int
) -> None:
    ids = [e.id for e in store.put_many("entry", [{"user_id": 0, "n": 0}] * 100)]
    daemon = cli("indexer", "--batch-size", "20", url=url)
    daemon.wait_for("worker started")
    writer = Writer(store, ids)
    writer.start()
    try:
        _restart_rounds(server, daemon, ROUNDS * rounds)
        time.sleep(0.5)  # writes after the last restart too
    finally:
        writer.stop()
    assert writer.acknowledged > 0 and writer.failures  # it wrote, and the kills hit it
    bad = [e for e in writer.failures if not isinstance(e, ShardUnavailable)]
    assert not bad, f"writes failed untyped: {bad[:3]!r}"

    assert store.wait_for_indexes(timeout=30), "the daemon did not catch up"
    assert daemon.process.poll() is None, daemon.output[-3000:]
    _assert_indexes_exact(store)
    _assert_acknowledged_kept(store, writer.known)
    assert "unavailable" in daemon.output  # it said why it waited
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0, daemon.output[-3000:]
    assert "Traceback" not in daemon.output, daemon.output[-3000:]


def _assert_acknowledged_kept(
    store: schemaless.Store, known: dict[uuid.UUID, Known | None]
) -> None:
    found = store.get_many(known)
    for entity_id, state in known.items():
        if state is not None:
            entity = found[entity_id]
            assert (entity.version, entity.body) == state, entity_id


def test_the_cleaner_daemon_lives_through_a_server_restart_and_repairs_after_it(
    store: schemaless.Store, server: MySQLServer, url: str, cli: Cli
) -> None:
    store.put_many("entry", [{"user_id": n % 5, "n": n, "tags": ["a"]} for n in range(200)])
    Worker(store, burst=True, install_signal_handlers=False).run()
    daemon = cli("cleaner", "--rate", "20000", url=url)
    _break_and_wait_for_repair(store, daemon, below=10)  # it runs (it logs nothing before)
    _restart_rounds(server, daemon, 1)
    _break_and_wait_for_repair(store, daemon, below=50)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0, daemon.output[-3000:]


def _break_and_wait_for_repair(store: schemaless.Store, daemon: Any, below: int) -> None:
    """Delete index rows behind the cleaner's back; wait until it has put them back."""
    table = store.registry.table(BY_USER)
    with store.shards[0].begin() as conn:
        assert conn.execute(sa.delete(table).where(table.c.n < below)).rowcount > 0
    repairs = daemon.output.count("repaired")
    deadline = time.monotonic() + 20
    while (
        actual_rows(store, BY_USER) != expected_rows(store, BY_USER)
        or daemon.output.count("repaired") == repairs  # it was the cleaner, and it said so
    ):
        assert daemon.process.poll() is None, daemon.output[-3000:]
        assert time.monotonic() < deadline, f"nothing repaired:\n{daemon.output[-3000:]}"
        time.sleep(0.2)
