"""Shard groups: a kind declared into a group lives, with its index rows, on that group's shards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import ConfigurationError, Index, InvalidId
from schemaless.tables import entities

BY_USER = Index(
    "history_by_user", kind="history", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)


def _kinds_per_shard(store: schemaless.Store) -> dict[str, set[str]]:
    found = {}
    for shard in store.shards:
        with shard.engine.connect() as conn:
            found[shard.name] = set(conn.execute(sa.select(entities.c.kind)).scalars())
    return found


@pytest.fixture
def store(sqlite_files: list[str]) -> Iterator[schemaless.Store]:
    urls = dict(zip(["s0", "s1", "h0"], sqlite_files, strict=True))
    store = schemaless.connect(urls, groups={"history": ["h0"]})
    store.migrate()
    store.define_kind("history", group="history")
    yield store
    store.close()


def test_kinds_of_a_group_live_on_its_shards(store: schemaless.Store) -> None:
    store.add_index(BY_USER)
    made = store.put_many("history", [{"user_id": n % 5, "n": n} for n in range(40)])
    made.append(store.put("history", {"user_id": 1, "n": 40}))
    store.put_many("entry", [{"n": n} for n in range(40)])
    Worker(store, burst=True, install_signal_handlers=False).run()
    assert _kinds_per_shard(store) == {"s0": {"entry"}, "s1": {"entry"}, "h0": {"history"}}
    table = store.registry.table(BY_USER)
    with store.shards[2].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 41
    assert [e["n"] for e in store.query("history").filter(user_id=1).order_by("n")] == [
        1,
        6,
        11,
        16,
        21,
        26,
        31,
        36,
        40,
    ]
    assert store.query("history").count() == 41
    assert set(store.get_many(e.id for e in made)) == {e.id for e in made}
    assert store.delete(made[0].id)
    assert store.shard_map("history").owners == ("h0",) * 4096
    assert set(store.shard_map().shards) == {"s0", "s1"}


def test_groups_are_stored_with_the_map(store: schemaless.Store, sqlite_files: list[str]) -> None:
    made = store.put("history", {"n": 1})
    urls = dict(zip(["s0", "s1", "h0"], sqlite_files, strict=True))
    later = schemaless.connect(urls)  # no groups option: the stored map has them
    assert later.get(made.id)["n"] == 1
    assert later.shard_map("history").shards == ["h0"]
    again = later.put("history", {"n": 2})
    assert later.shards.for_id(again.id.bytes).name == "h0"
    later.close()


def test_an_id_outside_the_kinds_group_is_refused(store: schemaless.Store) -> None:
    with pytest.raises(InvalidId, match="group"):
        store.put("history", {"n": 1}, id=uuid.uuid4())
    mine = store.put("history", {"n": 1})
    assert store.put("history", {"n": 2}, id=mine.id).version == 2
    with pytest.raises(InvalidId, match="group"):
        store.put("entry", {"n": 1}, id=mine.id)


def test_a_kind_with_entities_cannot_move_into_a_group(store: schemaless.Store) -> None:
    store.put("note", {"n": 1})
    with pytest.raises(ConfigurationError, match="has entities"):
        store.define_kind("note", group="history")
    with pytest.raises(ConfigurationError, match="no shard group"):
        store.define_kind("other", group="archive")


def test_a_group_must_name_listed_shards(sqlite_files: list[str]) -> None:
    with pytest.raises(ConfigurationError, match="listed shards"):
        schemaless.connect(sqlite_files, groups={"history": ["h9"]})
