"""Colocation: a user's entities live with their shard_on index rows; a pinned query reads one
server, and answers with the other one stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import MySQLServer, mysql_connection

BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)


@pytest.fixture
def store(databases: list[str]) -> Iterator[schemaless.Store]:
    store = schemaless.connect({"s0": databases[0], "s1": databases[1]}, timeout=1.0)
    store.migrate()
    store.define_kind("entry", colocate_on="user_id")
    store.add_index(BY_USER)
    yield store
    store.close()


def _drain(store: schemaless.Store) -> None:
    Worker(store, burst=True, install_signal_handlers=False).run()


def _users_by_shard(store: schemaless.Store) -> dict[int, int]:
    """A user id (of 0-9) whose rows live on each shard."""
    users = {store.shards.shard_for_value(u, "entry"): u for u in range(10)}
    assert sorted(users) == [0, 1]
    return users


def test_new_ids_are_minted_in_the_bucket_of_their_colocate_value(store: schemaless.Store) -> None:
    made = store.put_many("entry", [{"user_id": n % 10, "n": n} for n in range(60)])
    made.append(store.put("entry", {"user_id": 3, "n": 60}))
    for e in made:
        assert store.shards.shard_for_id(e.id.bytes) == store.shards.shard_for_value(
            e["user_id"], "entry"
        )
    assert {store.shards.shard_for_id(e.id.bytes) for e in made} == {0, 1}


def test_a_pinned_query_answers_with_the_other_server_stopped(
    store: schemaless.Store, servers: list[MySQLServer]
) -> None:
    store.put_many("entry", [{"user_id": n % 10, "n": n} for n in range(100)])
    _drain(store)
    for shard, user in _users_by_shard(store).items():
        query = store.query("entry").filter(user_id=user).order_by("-n")
        expected = [n for n in range(99, -1, -1) if n % 10 == user]
        assert [e["n"] for e in query[:3]] == expected[:3]  # plans and registry read while up
        other = servers[1 - shard]
        other.pause()
        try:
            assert [e["n"] for e in query[:3]] == expected[:3]
            assert [e["n"] for e in query] == expected
            assert query.count() == len(expected)
        finally:
            other.resume()


def test_an_entity_away_from_its_index_rows_is_still_found(store: schemaless.Store) -> None:
    users = _users_by_shard(store)
    moved = store.put("entry", {"user_id": users[0], "n": 1})
    given = store.put("entry", {"user_id": users[1], "n": 2}, id=uuid.uuid4())
    store.put("entry", {"user_id": users[1], "n": 3}, id=moved.id)  # keeps its id and shard
    assert store.get(moved.id).version == 2
    _drain(store)
    found = store.query("entry").filter(user_id=users[1]).order_by("n")
    assert [(e.id, e["n"]) for e in found] == [(given.id, 2), (moved.id, 3)]
    assert [e.id for e in found[:1]] == [given.id]
    assert list(store.query("entry").filter(user_id=users[0])) == []


def test_a_body_lacking_the_colocate_field_gets_a_random_id(store: schemaless.Store) -> None:
    made = store.put_many("entry", [{"n": n} for n in range(40)])
    assert {store.shards.shard_for_id(e.id.bytes) for e in made} == {0, 1}
    assert {e.id.version for e in made} == {4}


def test_a_kind_is_declared_once(store: schemaless.Store, databases: list[str]) -> None:
    assert store.define_kind("entry", colocate_on="user_id").colocate_on == "user_id"
    with pytest.raises(schemaless.ConfigurationError, match="declared already"):
        store.define_kind("entry", colocate_on="owner_id")
    other = schemaless.connect({"s0": databases[0], "s1": databases[1]})
    assert other.shards.kind("entry").colocate_on == "user_id"  # stored, read by a new store
    other.close()


def test_a_pinned_query_is_one_statement_on_one_server(
    store: schemaless.Store, servers: list[MySQLServer]
) -> None:
    store.put_many("entry", [{"user_id": n % 10, "n": n} for n in range(100)])
    _drain(store)
    for shard, user in _users_by_shard(store).items():
        query = store.query("entry").filter(user_id=user).order_by("-n")
        assert len(query[:3]) == 3  # plans, reads the registry
        before = [_selects(server) for server in servers]
        assert len(query[:3]) == 3
        after = [_selects(server) for server in servers]
        assert after[shard] - before[shard] == 1
        assert after[1 - shard] == before[1 - shard]


def _selects(server: MySQLServer) -> int:
    """The server's count of SELECT statements run so far (SHOW STATUS is not one)."""
    conn = mysql_connection(server.url)
    try:
        cursor = conn.cursor()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Com_select'")
        return int(cursor.fetchone()[1])
    finally:
        conn.close()
