"""The shard layer behind a proxy that resets connections around COMMIT, or answers nothing.

Each fault is placed at a chosen point of the MySQL protocol (tests/faults/proxy.py), on each of
the three ways a write reaches a server: the Core path (a put with an id: SELECT ... FOR UPDATE,
UPDATE, INSERT of the change row, COMMIT), the fast path (a put without an id: two INSERTs and
mysqlclient's commit()) and put_many (one transaction of many rows). What the store raises must
tell the truth about what the server holds, read on the server itself, past the proxy:
ShardUnavailable means nothing was written; OutcomeUnknown means either may be true.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import schemaless
from schemaless import OutcomeUnknown, ShardUnavailable
from schemaless.testing import create_database, drop_database, mysql_connection
from tests.faults.proxy import Mode, Proxy, timed

TIMEOUT = 1.0
WRITES = ["core", "fast", "many"]
MANY = 5


@pytest.fixture(scope="module")
def database(mysql_server: str) -> Iterator[str]:
    """A migrated database on the test server, shared by this module's tests (kinds differ)."""
    name = f"t_{secrets.token_hex(8)}"
    url = create_database(mysql_server, name)
    store = schemaless.connect(url)
    store.migrate()
    store.close()
    yield url
    drop_database(mysql_server, name)


@pytest.fixture(scope="module")
def proxy(database: str) -> Iterator[Proxy]:
    with Proxy(make_url(database).port or 3306) as proxy:
        yield proxy


@pytest.fixture
def connect(proxy: Proxy, database: str) -> Iterator[Callable[[], schemaless.Store]]:
    """Open stores through the proxy (with a 1 s timeout); closed, and the proxy healed, after."""
    proxy.mode = Mode.PASS
    opened: list[schemaless.Store] = []

    def open_store() -> schemaless.Store:
        opened.append(schemaless.connect(proxy.url(database), timeout=TIMEOUT))
        assert opened[-1].shards[0].fast is not None  # the fast path serves new entities
        return opened[-1]

    yield open_store
    proxy.mode = Mode.PASS
    for store in opened:
        store.close()


def _writer(store: schemaless.Store, path: str, kind: str) -> Callable[[], Any]:
    """A write of ``path``, made once while the proxy passes (so connections are kept)."""
    if path == "core":
        existing = store.put(kind, {"n": 0})
        write = lambda: store.put(kind, {"n": 1}, id=existing.id)  # noqa: E731
    elif path == "fast":
        write = lambda: store.put(kind, {"n": 1})  # noqa: E731
    else:
        write = lambda: store.put_many(kind, [{"n": n} for n in range(MANY)])  # noqa: E731
    write()
    return write


def _on_server(database: str, kind: str) -> tuple[list[int], int]:
    """The versions of ``kind``'s entities and the count of its change rows, on the server."""
    conn = mysql_connection(database)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT version FROM entities WHERE kind = %s ORDER BY version", (kind,))
        versions = [int(row[0]) for row in cursor.fetchall()]
        cursor.execute("SELECT COUNT(*) FROM entity_changes WHERE kind = %s", (kind,))
        return versions, int(cursor.fetchone()[0])
    finally:
        conn.close()


def _written(path: str, times: int) -> tuple[list[int], int]:
    """What ``_on_server`` finds once the write of ``path`` happened ``times`` times."""
    if path == "core":  # one entity: the put that made it, then its updates
        return [1 + times], 1 + times
    rows = times if path == "fast" else times * MANY
    return [1] * rows, rows


def _fault(proxy: Proxy, mode: Mode, write: Callable[[], Any]) -> BaseException:
    """Run ``write`` under ``mode``; what it raised, after checking the proxy did reset."""
    resets = proxy.resets
    proxy.mode = mode
    seconds, exc = timed(write)
    proxy.mode = Mode.PASS
    assert exc is not None, f"{mode}: the write returned"
    assert proxy.resets > resets, f"{mode}: the proxy never reset a connection"
    assert seconds < TIMEOUT, f"{mode}: a reset took {seconds:.2f} s to notice"
    return exc


def _assert_typed(exc: BaseException, expected: type[ShardUnavailable]) -> None:
    assert type(exc) is expected, f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert isinstance(exc, ShardUnavailable) and exc.shard == "s0"
    assert exc.__cause__ is not None  # the driver's error, chained


@pytest.mark.parametrize("path", WRITES)
def test_a_reset_before_commit_is_unavailable_and_nothing_is_written(
    proxy: Proxy, connect: Callable[[], schemaless.Store], database: str, path: str
) -> None:
    kind = f"before_{path}"
    store = connect()
    write = _writer(store, path, kind)
    _assert_typed(_fault(proxy, Mode.RESET_BEFORE_COMMIT, write), ShardUnavailable)
    assert _on_server(database, kind) == _written(path, 1)  # the first write was rolled back
    write()  # the store recovers at once
    assert _on_server(database, kind) == _written(path, 2)


@pytest.mark.parametrize("path", WRITES)
def test_a_commit_swallowed_is_an_unknown_outcome_and_nothing_is_written(
    proxy: Proxy, connect: Callable[[], schemaless.Store], database: str, path: str
) -> None:
    kind = f"at_{path}"
    store = connect()
    write = _writer(store, path, kind)
    _assert_typed(_fault(proxy, Mode.RESET_AT_COMMIT, write), OutcomeUnknown)
    assert _on_server(database, kind) == _written(path, 1)
    write()
    assert _on_server(database, kind) == _written(path, 2)


@pytest.mark.parametrize("path", WRITES)
def test_a_reset_after_commit_is_an_unknown_outcome_and_the_write_is_there(
    proxy: Proxy, connect: Callable[[], schemaless.Store], database: str, path: str
) -> None:
    kind = f"after_{path}"
    store = connect()
    write = _writer(store, path, kind)
    _assert_typed(_fault(proxy, Mode.RESET_AFTER_COMMIT, write), OutcomeUnknown)
    assert _on_server(database, kind) == _written(path, 2)  # committed, though unanswered
    write()
    assert _on_server(database, kind) == _written(path, 3)


def test_a_blackhole_is_unavailable_within_the_timeout_on_every_path(
    proxy: Proxy, connect: Callable[[], schemaless.Store]
) -> None:
    """Each call on a store of its own (so no call learns from another's wait), all at once.

    A store that was used holds pooled and kept connections: a statement on them waits its
    read timeout; a store never used waits its connect timeout. Neither may wait twice.
    """
    calls: dict[str, Callable[[], Any]] = {}
    for used in (True, False):
        for path in [*WRITES, "get"]:
            store = connect()
            if path == "get":
                entity = store.put("hole", {"n": 1}) if used else None
                call = (lambda s, e: lambda: s.get(e.id if e else b"\0" * 16))(store, entity)
            elif used:
                call = _writer(store, path, f"hole_{path}")
            else:
                call = (lambda s, p: lambda: _writer(s, p, f"hole_{p}"))(store, path)
            calls[f"{path}, {'used' if used else 'never used'}"] = call
    proxy.mode = Mode.BLACKHOLE
    outcomes = _concurrently(calls)
    for label, (seconds, exc) in outcomes.items():
        assert isinstance(exc, ShardUnavailable), f"{label}: {exc!r}"
        assert not isinstance(exc, OutcomeUnknown), f"{label}: {exc!r}"  # COMMIT never sent
        assert exc.shard == "s0"
        assert TIMEOUT * 0.9 < seconds < TIMEOUT + 1, f"{label}: {seconds:.2f} s"


def test_a_silent_shard_fails_later_calls_at_once_then_is_tried_again(
    proxy: Proxy, connect: Callable[[], schemaless.Store]
) -> None:
    store = connect()
    entity = store.put("breaker", {"n": 1})
    proxy.mode = Mode.BLACKHOLE
    first, exc = timed(lambda: store.get(entity.id))
    assert isinstance(exc, ShardUnavailable) and first > TIMEOUT * 0.9
    for call in (lambda: store.get(entity.id), lambda: store.put("breaker", {}, id=entity.id)):
        seconds, exc = timed(call)
        assert isinstance(exc, ShardUnavailable) and exc.shard == "s0"
        assert seconds < 0.05, "a call waited again on a shard known to be silent"
    proxy.mode = Mode.PASS
    deadline = time.monotonic() + TIMEOUT + 1
    while timed(lambda: store.get(entity.id))[1] is not None:
        assert time.monotonic() < deadline, "the shard was never tried again"
        time.sleep(0.05)
    assert store.put("breaker", {"n": 2}, id=entity.id).version == 2


def test_a_silent_server_costs_one_read_timeout_not_three(proxy: Proxy, database: str) -> None:
    """libmysqlclient retries a timed-out read twice (3x read_timeout); libmariadb does not.

    The layer's timeouts assume the latter (dialect.socket_timeout); a driver built against
    the former would make every silent call take three times as long.
    """
    conn = mysql_connection(proxy.url(database), read_timeout=1, connect_timeout=1)
    try:
        proxy.mode = Mode.BLACKHOLE
        seconds, exc = timed(lambda: conn.cursor().execute("SELECT 1"))
    finally:
        proxy.mode = Mode.PASS
        conn.close()
    assert exc is not None and 0.9 < seconds < 1.5, (seconds, exc)


def _concurrently(
    calls: dict[str, Callable[[], Any]],
) -> dict[str, tuple[float, BaseException | None]]:
    """Run every call in a thread of its own; each one's time and exception."""
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def run(label: str, call: Callable[[], Any]) -> None:
        outcomes[label] = timed(call)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == len(calls), "a call never returned"
    return outcomes
