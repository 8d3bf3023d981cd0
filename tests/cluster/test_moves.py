"""Online bucket moves (DESIGN 6, "Moving buckets online") on private MariaDB servers.

Shards s0 and s1 live on two servers; s2, the shard added and moved to, is a third database on
the second server. Each test moves buckets 0-1023 (a quarter of the ids, half of s0's) from s0
to s2 while other store objects (standing in for other processes, with maps of their own)
write and index.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from schemaless_indexer.cleaner import Cleaner
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.moves import MoveOptions, Mover, add_shard, listed, parse
from schemaless.moves.plan import holds
from schemaless.shards import ARM_TRUST
from schemaless.tables import entities
from schemaless.testing import MySQLServer, create_database, drop_database

KIND = "entry"
MOVED = "0-1023"
BY_USER = Index("by_user", kind=KIND, fields={"user_id": "int", "n": "int"}, shard_on="user_id")
BY_TITLE = Index("by_title", kind=KIND, fields={"title": "str"})
FAST = MoveOptions(batch_size=200, grace=2.5, arm_grace=2.5)  # two map checks of a process


@pytest.fixture
def urls(servers: list[MySQLServer], databases: list[str]) -> Iterator[dict[str, str]]:
    """s0 and s1 on two servers; s2, not migrated yet, beside s1."""
    name = f"c_{secrets.token_hex(6)}"
    third = create_database(servers[1].url, name)
    try:
        yield {"s0": databases[0], "s1": databases[1], "s2": third}
    finally:
        drop_database(servers[1].url, name)


def two_shard_store(urls: dict[str, str], count: int) -> dict[uuid.UUID, dict[str, Any] | None]:
    """Migrate s0 and s1, add the indexes, store ``count`` entities; their bodies by id."""
    store = schemaless.connect({"s0": urls["s0"], "s1": urls["s1"]})
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TITLE)
    bodies = [body(n) for n in range(count)]
    model: dict[uuid.UUID, dict[str, Any] | None] = {}
    for start in range(0, count, 500):
        for entity in store.put_many(KIND, bodies[start : start + 500]):
            model[entity.id] = entity.body
    store.close()
    return model


def body(n: int) -> dict[str, Any]:
    return {"user_id": n % 40, "n": n, "title": f"t{n % 97}"}


def three_shard_store(urls: dict[str, str]) -> schemaless.Store:
    store = schemaless.connect(urls)
    add_shard(store)
    return store


class Writer(threading.Thread):
    """Puts, updates and deletes until stopped, recording every acknowledged write."""

    def __init__(self, store: schemaless.Store, model: dict[uuid.UUID, Any]) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.model = model
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self.max_latency = 0.0
        self.writes = 0
        self.rng = random.Random(5)

    def run(self) -> None:
        n = 1_000_000
        live = [i for i, b in self.model.items() if b is not None]
        while not self.stopping.is_set():
            n += 1
            started = time.perf_counter()
            try:
                self.write(n, live)
            except BaseException as exc:  # the test fails on any
                self.errors.append(exc)
                return
            self.max_latency = max(self.max_latency, time.perf_counter() - started)
            self.writes += 1

    def write(self, n: int, live: list[uuid.UUID]) -> None:
        choice = self.rng.random()
        if choice < 0.4 or not live:
            entity = self.store.put(KIND, body(n))
            self.model[entity.id] = entity.body
            live.append(entity.id)
        elif choice < 0.85:
            target = self.rng.choice(live)
            self.store.put(KIND, body(n), id=target)
            self.model[target] = body(n)
        else:
            target = live.pop(self.rng.randrange(len(live)))
            self.store.delete(target)
            self.model[target] = None


def stored(store: schemaless.Store) -> dict[str, dict[bytes, tuple[int, bytes | None]]]:
    """Every entity row of every shard, read straight from the tables: id -> (version, body)."""
    found = {}
    for shard in store.shards:
        with shard.read() as conn:
            rows = conn.execute(sa.select(entities.c.id, entities.c.version, entities.c.body))
            found[shard.name] = {bytes(r.id): (r.version, r.body) for r in rows}
    return found


def check_placement(store: schemaless.Store, model: dict[uuid.UUID, Any]) -> None:
    """Every acknowledged write is held once, by its owner under the new map, as written."""
    rows = stored(store)
    for entity_id, expected in model.items():
        key = entity_id.bytes
        holders = [name for name, held in rows.items() if key in held]
        owner = store.shards.for_id(key).name
        assert holders == [owner], (entity_id, holders, owner)
        version, blob = rows[owner][key]
        assert (None if blob is None else store.codec.decode(blob)) == expected


def check_moved(store: schemaless.Store) -> None:
    """No copy of a moved entity is left on s0; s2 holds moved entities only."""
    rows = stored(store)
    moved = set(parse(MOVED))
    assert not [k for k in rows["s0"] if holds(0, moved, k)], "old copies left on s0"
    assert all(holds(0, moved, k) for k in rows["s2"])


def reference_query(model: dict[uuid.UUID, Any], user_id: int) -> list[uuid.UUID]:
    """What a one-shard store answers: the live entities of a user, by n."""
    live = [(b["n"], i) for i, b in model.items() if b is not None and b["user_id"] == user_id]
    return [i for _, i in sorted(live)]


def test_move_under_writes_keeps_every_acknowledged_write(urls: dict[str, str]) -> None:
    model = two_shard_store(urls, 3000)
    mover_store = three_shard_store(urls)
    writer = Writer(schemaless.connect(urls), model)
    indexer_store = schemaless.connect(urls)
    indexer = Worker(indexer_store, install_signal_handlers=False)
    threads = [writer, threading.Thread(target=indexer.run, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        mover = Mover(mover_store, FAST)
        (move,) = mover.plan(parse(MOVED), "s2")
        done = mover.run(move)
        time.sleep(0.5)  # writes on the new owner, after the move
    finally:
        writer.stopping.set()
        writer.join(10)
        indexer.stop()
        threads[1].join(10)
    assert not writer.errors, writer.errors
    assert writer.writes > 200
    assert done.phase == "done" and done.frozen_ms is not None and done.frozen_ms < 1000
    assert writer.max_latency < 1.0, f"a write waited {writer.max_latency:.2f} s"
    assert mover_store.shard_map().owners[0] == "s2"
    check_placement(mover_store, model)
    check_moved(mover_store)
    Worker(mover_store, burst=True, install_signal_handlers=False).run()
    report = Cleaner(mover_store).verify()
    assert report.is_clean, report.format()
    for user_id in (0, 7, 13, 39):
        found = mover_store.query(KIND).filter(user_id=user_id).order_by("n")
        assert [e.id for e in found] == reference_query(model, user_id)


def test_a_stale_map_write_is_refused_and_lands_on_the_new_owner(urls: dict[str, str]) -> None:
    model = two_shard_store(urls, 400)
    mover_store = three_shard_store(urls)
    stale = schemaless.connect(urls)
    stale.shards.refresh = 3600.0  # this process never checks the map's version by itself
    moved = set(parse(MOVED))
    old = next(i for i in model if holds(0, moved, i.bytes))
    assert stale.shards.for_id(old.bytes).name == "s0"  # the map is read now, before the move
    mover = Mover(mover_store, MoveOptions(grace=0.1, arm_grace=2.5))
    (move,) = mover.plan(parse(MOVED), "s2")
    mover.run(move)
    fresh_id = uuid.UUID(bytes=(5).to_bytes(2, "big") + secrets.token_bytes(14), version=4)
    stale.put(KIND, body(1), id=old)
    stale.put(KIND, body(2), id=fresh_id)
    new = stale.put(KIND, body(3))  # minted anywhere: wherever it lands, once
    rows = stored(mover_store)
    for key in (old.bytes, fresh_id.bytes):
        assert key in rows["s2"] and key not in rows["s0"]
    assert mover_store.get(old).body == body(1)
    assert mover_store.get(fresh_id).body == body(2)
    assert mover_store.get(new.id).body == body(3)
    assert stale.shard_map().version == 3  # 1, armed (2), flipped (3)


def run_cli(*args: str, urls: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = cli(*args, urls=urls)
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=_env())


def cli(*args: str, urls: dict[str, str]) -> list[str]:
    url = ",".join(f"{name}={url}" for name, url in urls.items())
    return [sys.executable, "-m", "schemaless", *args, f"--url={url}"]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def test_a_move_killed_mid_copy_resumes_when_run_again(urls: dict[str, str]) -> None:
    model = two_shard_store(urls, 6000)
    three_shard_store(urls).close()
    argv = cli("shards", "move", MOVED, "--to", "s2", "--batch-size", "20", urls=urls)
    mover = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = schemaless.connect(urls)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        moves = listed(store.shards)
        if moves and moves[0].copied >= 100:
            break
        time.sleep(0.05)
    mover.send_signal(signal.SIGKILL)
    mover.wait()
    (killed,) = listed(store.shards)
    assert killed.phase == "copying" and 0 < killed.copied < killed.total
    shown = run_cli("shards", "list", "--json", urls=urls)
    assert json.loads(shown.stdout)["moves"][0]["phase"] == "copying", shown.stderr
    status = run_cli("status", "--json", urls=urls)
    assert json.loads(status.stdout)["moves"][0]["id"] == killed.id, status.stderr
    assert store.shard_map().moving[0].id == killed.id
    resumed = run_cli("shards", "move", urls=urls)
    assert resumed.returncode == 0, resumed.stderr
    assert f"move {killed.id}" in resumed.stdout and "done" in resumed.stdout
    assert not [m for m in listed(store.shards) if m.is_open]
    store.shards.reload()
    check_placement(store, model)
    check_moved(store)
    Worker(store, burst=True, install_signal_handlers=False).run()
    assert Cleaner(store).verify().is_clean
    assert run_cli("shards", "list", urls=urls).stdout.count("default:") == 3


def test_an_unflipped_move_rolls_back(urls: dict[str, str]) -> None:
    model = two_shard_store(urls, 500)
    store = three_shard_store(urls)
    mover = Mover(store, FAST)
    (move,) = mover.plan(parse(MOVED), "s2")
    mover.run(move, until="catching_up")  # copied, not frozen
    assert stored(store)["s2"]
    mover.abort(move)
    assert not stored(store)["s2"]
    store.put(KIND, body(9), id=next(iter(model)))  # s0 takes the bucket's writes again
    check_placement(store, {**model, next(iter(model)): body(9)})


def test_writes_read_the_fence_only_once_a_move_armed_it(urls: dict[str, str]) -> None:
    store = three_shard_store(urls)
    store.put(KIND, body(1))
    assert not store.shards.fenced()  # never moved: a put skips the fence's statement
    Mover(three_shard_store(urls), MoveOptions(arm_grace=ARM_TRUST + 0.1))._arm()
    assert store.shards.fenced()  # its last read of the map is too old to trust now
    store.put(KIND, body(2))  # reads the map again: armed, version 2 everywhere
    assert store.shards.fenced() and store.shard_map().version == 2
