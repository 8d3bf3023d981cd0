"""Poison as an operator meets it: real `schemaless` processes over a store holding a corrupt blob
(bytes written around the store with SQL) or entities pickled by the application."""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import schemaless
from schemaless import Index
from schemaless.tables import entities
from schemaless.testing import run_command

BY_N = Index("thing_by_n", kind="thing", fields={"n": "int"})
GARBAGE = b"\x01\x00\xc1\xc1\xc1"  # a valid header, then bytes msgpack never uses

Cli = Callable[..., Any]


def rows(store: schemaless.Store) -> Counter[tuple[Any, ...]]:
    """BY_N's rows as (n, entity_id, version), as a multiset."""
    table = store.registry.table(BY_N)
    found: Counter[tuple[Any, ...]] = Counter()
    for shard in store.shards:
        with shard.read() as conn:
            stmt = sa.select(table.c.n, table.c.entity_id, table.c.version)
            found.update(tuple(row) for row in conn.execute(stmt))
    return found


def expected(made: list[schemaless.Entity], *, but: uuid.UUID | None = None) -> Counter[Any]:
    return Counter((e["n"], e.id.bytes, e.version) for e in made if e.id != but)


def write_body(store: schemaless.Store, entity_id: uuid.UUID, blob: bytes) -> None:
    with store.shards.for_id(entity_id.bytes).begin() as conn:
        conn.execute(entities.update().where(entities.c.id == entity_id.bytes).values(body=blob))


def run(*args: str, url: str) -> Any:
    done = run_command(*args, url=url)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_indexer_burst_sets_a_corrupt_blob_aside_and_indexes_the_rest(
    store: schemaless.Store, db_url: str
) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(8)])
    bad = made[3].id
    write_body(store, bad, GARBAGE)

    indexed = run("indexer", "--burst", url=db_url)

    assert indexed.returncode == 0, indexed.stderr
    assert rows(store) == expected(made, but=bad) and store.pending_changes() == 0
    shown = json.loads(run("status", "--json", url=db_url).stdout)
    assert shown["set_aside"] == 1
    assert [f["entity_id"] for f in shown["set_aside_entities"]] == [str(bad)]
    verified = run("verify", url=db_url)
    assert verified.returncode == 1 and "1 entities cannot be decoded" in verified.stdout


def test_a_repaired_blob_is_indexed_after_retry_set_aside(
    store: schemaless.Store, db_url: str
) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(5)])
    bad = made[1].id
    write_body(store, bad, GARBAGE)
    assert run("indexer", "--burst", url=db_url).returncode == 0
    write_body(store, bad, store.codec.encode({"n": 1}))  # the repair

    retried = run("indexer", "--retry-set-aside", url=db_url)

    assert retried.returncode == 0 and "re-queued 1" in retried.stdout
    assert store.pending_changes() == 1
    assert run("indexer", "--burst", url=db_url).returncode == 0
    assert rows(store) == expected(made)
    assert run("verify", url=db_url).returncode == 0
    assert json.loads(run("status", "--json", url=db_url).stdout)["set_aside"] == 0


def test_the_indexer_daemon_keeps_running_through_a_corrupt_blob(
    store: schemaless.Store, db_url: str, cli: Cli
) -> None:
    store.add_index(BY_N)
    first = store.put_many("thing", [{"n": n} for n in range(5)])
    write_body(store, first[2].id, GARBAGE)
    daemon = cli("indexer", "--batch-size", "3", url=db_url)
    daemon.wait_for("worker started")
    later = store.put_many("thing", [{"n": n} for n in range(5, 10)])

    assert store.wait_for_indexes(timeout=60), daemon.output[-2000:]
    assert daemon.process.poll() is None, daemon.output[-2000:]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.output[-2000:]
    assert rows(store) == expected(first + later, but=first[2].id)
    assert "set aside" in daemon.output


def test_a_pickle_store_is_indexed_and_verified_with_allow_pickle(
    store: schemaless.Store, db_url: str
) -> None:
    store.add_index(BY_N)
    pickled = schemaless.connect(db_url, serializer="pickle", allow_pickle=True)
    made = pickled.put_many("thing", [{"n": n} for n in range(4)])
    pickled.close()

    indexed = run("indexer", "--burst", "--allow-pickle", url=db_url)

    assert indexed.returncode == 0, indexed.stderr
    assert rows(store) == expected(made)
    assert run("verify", "--allow-pickle", url=db_url).returncode == 0
    refused = run("verify", url=db_url)  # without the option: reported, not a crash
    assert refused.returncode == 1 and "4 entities cannot be decoded" in refused.stdout


def test_workers_started_by_the_supervisor_get_allow_pickle(
    store: schemaless.Store, db_url: str
) -> None:
    store.add_index(BY_N)
    pickled = schemaless.connect(db_url, serializer="pickle", allow_pickle=True)
    made = pickled.put_many("thing", [{"n": n} for n in range(6)])
    pickled.close()

    indexed = run("indexer", "--burst", "--workers", "2", "--allow-pickle", url=db_url)

    assert indexed.returncode == 0, indexed.stderr
    assert rows(store) == expected(made) and store.set_aside() == []
