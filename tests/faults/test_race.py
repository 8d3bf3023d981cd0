"""Workers and a backfill racing over one entity never leave a duplicate index row.

Three real ``schemaless indexer --batch-size 1`` processes (every change row is a batch of its
own, so two workers often hold two change rows of one entity at once) and a real ``schemaless
backfill`` of an index added mid-way, while one client puts, updates and deletes a few hundred
entities, several times in a row each. The indexes are multi-valued, one is ``shard_on`` (on
MySQL the store has two shards, so its rows are written in a second transaction, on the other
shard). Then the log is drained and every index is compared, as a multiset, with what the
entities say, and ``verify`` must find it clean.

On MySQL this is the race that left 159-192 duplicate rows when appliers read the entities
``FOR SHARE``. SQLite's single writer cannot race; the test runs there on one shard (several
processes writing to two SQLite files would wait on each other's file locks), for the rest.
``pytest tests/faults/test_race.py --rounds 10`` runs ten rounds for a longer run.
"""

from __future__ import annotations

import random
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import schemaless
from schemaless import Index
from schemaless.testing import (
    actual_rows,
    create_database,
    drop_database,
    expected_rows,
    run_command,
)

BY_USER = Index(
    "race_by_user", kind="entry", fields={"user_id": "int", "tags": "str"}, shard_on="user_id"
)
BY_TAG = Index("race_by_tag", kind="entry", fields={"tags": "str", "n": "int"})
ENTITIES = 100
OPS = 2000  # puts, updates and deletes per round
TAGS = [f"t{n}" for n in range(8)]
DUPLICATE_KEY = ("Duplicate entry", "UNIQUE constraint failed")  # MySQL's, SQLite's words

Cli = Callable[..., Any]


@pytest.fixture(params=["sqlite", "mysql"])
def race_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store's URL: two MySQL shards, or one SQLite file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}"
        return
    server = request.getfixturevalue("mysql_server")
    names = [f"t_race{n}_{secrets.token_hex(4)}" for n in range(2)]
    urls = [create_database(server, name) for name in names]
    try:
        yield ",".join(urls)
    finally:
        for name in names:
            drop_database(server, name)


def _body(rnd: random.Random) -> dict[str, Any]:
    return {
        "user_id": rnd.randrange(20),
        "n": rnd.randrange(1000),
        "tags": rnd.sample(TAGS, rnd.randrange(4)),  # an empty list is one NULL row
    }


def _write(store: schemaless.Store, rnd: random.Random, ids: list[Any], ops: int) -> None:
    """``ops`` writes by one client, an entity written up to three times in a row, so that its
    change rows sit side by side in the log and several workers claim them at once.

    Half the runs start with a new entity, and some with a delete (the id is put again at once,
    its version rising): an entity with no index rows yet is where two appliers that do not
    exclude each other both find nothing to delete, and both insert.
    """
    done = 0
    while done < ops:
        roll = rnd.random()
        if roll < 0.5:
            ids.append(store.put("entry", _body(rnd)).id)
            entity_id = ids[-1]
        else:
            entity_id = rnd.choice(ids)
            if roll < 0.6:
                store.delete(entity_id)
        for _ in range(rnd.randint(1, 2)):
            store.put("entry", _body(rnd), id=entity_id)
            done += 1
        done += 1


def _assert_exact(store: schemaless.Store, indexes: list[Index]) -> None:
    """Every index holds, as a multiset, the rows its entities say: no row twice."""
    found = {
        index.name: (actual_rows(store, index), expected_rows(store, index)) for index in indexes
    }
    duplicates = {
        name: sum(count - 1 for count in actual.values() if count > 1)
        for name, (actual, _) in found.items()
    }
    assert not any(duplicates.values()), f"duplicate rows: {duplicates}"
    for name, (actual, expected) in found.items():
        assert actual == expected, f"{name}: missing {expected - actual}, extra {actual - expected}"


def _assert_no_duplicate_key(*daemons: Any) -> None:
    """No applier met the primary key: it is a backstop, never the thing that keeps rows single.

    (Appliers that did not exclude each other would meet it, and the worker's entity-by-entity
    retry would hide that from the index's contents.)
    """
    for daemon in daemons:
        refused = [line for line in daemon.lines if any(text in line for text in DUPLICATE_KEY)]
        assert not refused, refused[:3]


def _round(
    store: schemaless.Store, url: str, cli: Cli, rnd: random.Random, ids: list[Any], n: int
) -> Index:
    """One round: half the writes wait in the log, then three workers race through that
    backlog (an entity's change rows side by side) while an index is added and backfilled and
    the other half of the writes go on; the log drains and the workers stop on SIGTERM."""
    late = Index(f"race_late_{n}", kind="entry", fields={"n": "int", "tags": "str"})
    _write(store, rnd, ids, OPS // 2)
    workers = [cli("indexer", "--batch-size", "1", url=url) for _ in range(3)]
    for worker in workers:
        worker.wait_for("worker started")
    assert store.add_index(late) == "building"
    backfill = cli("backfill", late.name, "--batch-size=10", "--rate=1000", url=url)
    _write(store, rnd, ids, OPS - OPS // 2)
    assert backfill.wait(timeout=120) == 0, backfill.output[-3000:]
    drained = store.wait_for_indexes(timeout=120)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    codes = [worker.wait(timeout=30) for worker in workers]
    assert codes == [0, 0, 0], "\n".join(w.output[-2000:] for w in workers)
    _assert_no_duplicate_key(*workers, backfill)
    assert drained, "the workers did not drain the log"
    assert store.registry.get(late.name).state == "ready"
    return late


def test_racing_workers_and_a_backfill_leave_every_index_exact(
    race_url: str, cli: Cli, rounds: int
) -> None:
    store = schemaless.connect(race_url)
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    rnd = random.Random()
    ids = [e.id for e in store.put_many("entry", [_body(rnd) for _ in range(ENTITIES)])]
    indexes = [BY_USER, BY_TAG]
    try:
        for n in range(rounds):
            indexes.append(_round(store, race_url, cli, rnd, ids, n))
            _assert_exact(store, indexes)
            # Nothing set aside either: an apply that failed even when retried alone.
            assert not store.set_aside(), [f.error for f in store.set_aside()][:5]
            verify = run_command("verify", url=race_url)
            assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        store.close()
