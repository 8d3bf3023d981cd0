"""Two shards: entities by id, index rows by their shard_on value, queries merged in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.tables import entities
from schemaless.testing import actual_rows, create_database, drop_database, expected_rows

BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)
BY_N = Index("entry_by_n", kind="entry", fields={"n": "int"})
T0 = dt.datetime(2026, 1, 1)


@pytest.fixture(params=["sqlite", "mysql"])
def sharded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[schemaless.Store]:
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / f's{n}.db'}" for n in range(2)]
        dropping: list[str] = []
    else:
        server = request.getfixturevalue("mysql_server")
        dropping = [f"t_shard{n}_{id(request) % 10**8}" for n in range(2)]
        urls = [create_database(server, name) for name in dropping]
    store = schemaless.connect(urls)
    store.migrate()
    yield store
    store.close()
    for name in dropping:
        drop_database(server, name)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_entities_spread_over_both_shards(sharded: schemaless.Store) -> None:
    made = sharded.put_many("entry", [{"n": i} for i in range(200)])
    counts = [_count(shard.engine, entities) for shard in sharded.shards]
    assert sum(counts) == 200 and min(counts) > 40
    assert {e.id for e in made} == set(sharded.get_many(e.id for e in made))


def test_index_rows_follow_their_shard_on_value_and_move_with_it(sharded: schemaless.Store) -> None:
    sharded.add_index(BY_USER)
    users = {sharded.shards.shard_for_value(u): u for u in range(20)}
    assert len(users) == 2, "two user ids on different shards"
    home, away = users[0], users[1]
    e = sharded.put("entry", {"user_id": home, "n": 1})
    Worker(sharded, burst=True, install_signal_handlers=False).run()
    table = sharded.registry.table(BY_USER)
    assert [_count(shard.engine, table) for shard in sharded.shards] == [1, 0]
    sharded.put("entry", {"user_id": away, "n": 2}, id=e.id)
    Worker(sharded, burst=True, install_signal_handlers=False).run()
    assert [_count(shard.engine, table) for shard in sharded.shards] == [0, 1]
    assert [x.id for x in sharded.query("entry").filter(user_id=away)] == [e.id]
    assert list(sharded.query("entry").filter(user_id=home)) == []


def test_unpinned_queries_merge_shards_in_order(sharded: schemaless.Store) -> None:
    sharded.add_index(BY_N)
    sharded.add_index(BY_USER)
    sharded.put_many("entry", [{"n": i, "user_id": i % 7} for i in range(100)])
    Worker(sharded, burst=True, install_signal_handlers=False).run()
    q = sharded.query("entry").filter(n__gte=10).order_by("-n")
    assert [e["n"] for e in q[:15]] == list(range(99, 84, -1))
    assert q.count() == 90
    by_user = sharded.query("entry").filter(user_id__in=[1, 2]).order_by("n")
    assert [e["n"] for e in by_user] == sorted(i for i in range(100) if i % 7 in (1, 2))
    for index in (BY_N, BY_USER):
        assert actual_rows(sharded, index) == expected_rows(sharded, index)


def test_listing_merges_shards(sharded: schemaless.Store) -> None:
    sharded.put_many("entry", [{"n": i} for i in range(30)])
    assert sorted(e["n"] for e in sharded.query("entry")) == list(range(30))
    assert sharded.query("entry").count() == 30
