"""Every public call, on a dead, a silent and an unmigrated shard: only our errors, in time.

No driver or SQLAlchemy exception may escape a public call (DESIGN section 4): each call below
either returns or raises an exception whose class lives in ``schemaless``. A dead shard (a port
with nothing listening) and a silent one (a socket that accepts and never answers) raise
ShardUnavailable naming the shard within the timeout plus a second; a database whose tables
were never made raises ConfigurationError saying to migrate.

Silent calls each run on a store of their own, all at once: a call must not lean on what an
earlier one learnt (the shard's breaker), nor make the module wait a second per call.
"""

from __future__ import annotations

import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from schemaless_indexer.backfill import Backfill
from schemaless_indexer.cleaner import Cleaner
from schemaless_indexer.worker import Worker
from sqlalchemy.engine import make_url

import schemaless
from schemaless import ConfigurationError, Entity, Index, ShardUnavailable
from schemaless.status import status
from schemaless.testing import create_database, drop_database
from tests.faults.proxy import Mode, Proxy, timed

TIMEOUT = 1.0
BY_USER = Index("walk_by_user", kind="entry", fields={"user_id": "int", "n": "int"})
BODY = {"user_id": 7, "n": 1, "title": "hi"}
OFFLINE = {"connect", "close"}  # calls that never reach a server
CACHED = {"query plan"}  # may answer from the registry a used store read under a second ago

Calls = dict[str, Callable[[], Any]]


def public_calls(url: str) -> Calls:
    """Every public call of the store, its queries and the daemons' entry points, on ``url``.

    Each call opens its own store (with a 1 s timeout), so that calls can run at once.
    """
    some = uuid.uuid4()
    stores: dict[str, schemaless.Store] = {}

    def on_store(name: str, call: Callable[[schemaless.Store], Any]) -> Callable[[], Any]:
        stores[name] = schemaless.connect(url, timeout=TIMEOUT)
        return lambda: call(stores[name])

    def query(store: schemaless.Store) -> schemaless.Query:
        return store.query("entry").filter(user_id=7).order_by("n")

    calls: dict[str, Callable[[schemaless.Store], Any]] = {
        "migrate": lambda s: s.migrate(),
        "put": lambda s: s.put("entry", BODY),
        "put with id": lambda s: s.put("entry", BODY, id=some),
        "put with expect_version": lambda s: s.put("entry", BODY, id=some, expect_version=0),
        "put_many": lambda s: s.put_many("entry", [BODY, BODY]),
        "get": lambda s: s.get(some),
        "get_many": lambda s: s.get_many([some, uuid.uuid4()]),
        "delete": lambda s: s.delete(some),
        "delete with expect_version": lambda s: s.delete(some, expect_version=1),
        "add_index": lambda s: s.add_index(BY_USER),
        "drop_index": lambda s: s.drop_index(BY_USER.name),
        "indexes": lambda s: s.indexes(),
        "query iteration": lambda s: list(query(s)),
        "query len": lambda s: len(query(s)),
        "query slice": lambda s: list(query(s)[:10]),
        "query item": lambda s: query(s)[0],
        "query count": lambda s: query(s).count(),
        "query first": lambda s: query(s).first(),
        "query exists": lambda s: query(s).exists(),
        "query after": lambda s: list(query(s).after(Entity(some, "entry", 1, BODY))),
        "query plan": lambda s: query(s).plan(),
        "listing": lambda s: list(s.query("entry")),
        "scan": lambda s: list(s.query("entry").scan().filter(title="hi")),
        "wait_for_indexes": lambda s: s.wait_for_indexes(timeout=0.1),
        "pending_changes": lambda s: s.pending_changes(),
        "set_aside": lambda s: s.set_aside(),
        "worker --burst": lambda s: Worker(s, burst=True, install_signal_handlers=False).run(),
        "backfill": lambda s: Backfill(
            s, BY_USER.name, progress=False, install_signal_handlers=False
        ).run(),
        "verify": lambda s: Cleaner(s, install_signal_handlers=False).verify(),
        "verify --repair": lambda s: Cleaner(s, install_signal_handlers=False).verify(repair=True),
        "status": lambda s: status(s),
    }
    walk = {name: on_store(name, call) for name, call in calls.items()}
    walk["connect"] = lambda: schemaless.connect(url, timeout=TIMEOUT).close()
    walk["close"] = lambda: stores["migrate"].close()  # last: it is the migrate call's store
    return walk


def _assert_ours(name: str, exc: BaseException | None) -> None:
    if exc is not None:
        kind = type(exc)
        assert kind.__module__.startswith("schemaless"), (
            f"{name} let {kind.__module__}.{kind.__name__} escape: {exc}"
        )


def _assert_unavailable(outcomes: dict[str, tuple[float, BaseException | None]]) -> None:
    """Each call typed; each one that needs the shard raised ShardUnavailable naming it, in time."""
    for name, (seconds, exc) in outcomes.items():
        _assert_ours(name, exc)
        assert seconds < TIMEOUT + 1, f"{name} took {seconds:.2f} s"
        if name in OFFLINE:
            assert exc is None, f"{name}: {exc!r}"
        elif name not in CACHED or exc is not None:
            assert isinstance(exc, ShardUnavailable), f"{name}: {exc!r}"
            assert exc.shard == "s0", f"{name}: {exc!r}"


def _concurrently(calls: Calls) -> dict[str, tuple[float, BaseException | None]]:
    """Each call's time and exception, all run at once (each in a thread of its own)."""
    outcomes: dict[str, tuple[float, BaseException | None]] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        outcomes[name] = timed(call)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(outcomes) == set(calls), f"no answer from {set(calls) - set(outcomes)}"
    return outcomes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def database(mysql_server: str) -> Iterator[str]:
    """A migrated database with an index and a few entities, for the stores that were used."""
    name = f"t_{secrets.token_hex(8)}"
    url = create_database(mysql_server, name)
    store = schemaless.connect(url)
    store.migrate()
    store.add_index(BY_USER)
    store.put_many("entry", [BODY] * 3)
    store.close()
    yield url
    drop_database(mysql_server, name)


def test_every_call_on_a_dead_shard_raises_shard_unavailable_at_once() -> None:
    url = f"mysql+mysqldb://root@127.0.0.1:{_free_port()}/app"
    outcomes = {name: timed(call) for name, call in public_calls(url).items()}
    _assert_unavailable(outcomes)


def test_every_call_on_a_silent_shard_raises_shard_unavailable_within_the_timeout(
    database: str,
) -> None:
    """Stores never used wait for the handshake; stores used hold pooled and kept connections.

    A used store first does what the call will do, with the proxy passing, so that its
    connections are open (kept by the fast path, pooled by SQLAlchemy) when the proxy falls
    silent; its call then waits on a statement or a ping, never on both.
    """
    with Proxy(make_url(database).port or 3306) as proxy:
        never_used = public_calls(proxy.url(database))
        used = public_calls(proxy.url(database))
        for name, call in used.items():
            if name not in ("migrate", "add_index", "drop_index", "close"):
                timed(call)  # may raise: NotFound, Conflict; the connections are what counts
        proxy.mode = Mode.BLACKHOLE
        calls = {f"{name} (never used)": call for name, call in never_used.items()}
        calls.update({f"{name} (used)": call for name, call in used.items()})
        outcomes = _concurrently(calls)
    _assert_unavailable({name.split(" (")[0]: o for name, o in outcomes.items() if "never" in name})
    _assert_unavailable({name.split(" (")[0]: o for name, o in outcomes.items() if "(used" in name})


def test_every_call_on_an_unmigrated_store_says_to_migrate(db_url: str) -> None:
    calls = public_calls(db_url)
    migrate, close = calls.pop("migrate"), calls.pop("close")
    for name, call in calls.items():
        _, exc = timed(call)
        _assert_ours(name, exc)
        if name in OFFLINE:
            assert exc is None, f"{name}: {exc!r}"
        else:
            assert isinstance(exc, ConfigurationError), f"{name}: {exc!r}"
            assert "migrate" in str(exc), f"{name}: {exc}"
    assert timed(migrate) == (pytest.approx(0, abs=60), None)
    close()
