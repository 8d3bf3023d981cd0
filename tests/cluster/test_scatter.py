"""Scatter queries: every shard's first page read at once, merged in order, never a subset."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index, ShardUnavailable
from schemaless.testing import MySQLServer, create_database, drop_database, mysql_connection

BY_N = Index("entry_by_n", kind="entry", fields={"n": "int"})
BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)
BODIES = [{"n": (n * 37) % 500, "user_id": n % 13, "odd": n % 2 == 1} for n in range(500)]


def _loaded(store: schemaless.Store) -> schemaless.Store:
    store.migrate()
    store.add_index(BY_N)
    store.add_index(BY_USER)
    store.put_many("entry", BODIES)
    Worker(store, burst=True, install_signal_handlers=False).run()
    return store


@pytest.fixture(scope="module")
def stores(servers: list[MySQLServer]) -> Iterator[tuple[schemaless.Store, schemaless.Store]]:
    """The same entities in a store on both servers and in a store of one shard."""
    name = f"c_scatter_{secrets.token_hex(4)}"
    urls = [create_database(server.url, name) for server in servers]
    single = create_database(servers[0].url, name + "_one")
    two = _loaded(schemaless.connect(urls, timeout=1.0))
    one = _loaded(schemaless.connect(single))
    yield two, one
    two.close()
    one.close()
    for server in servers:
        server.resume()
        drop_database(server.url, name)
    drop_database(servers[0].url, name + "_one")


@pytest.fixture
def two(stores: tuple[schemaless.Store, schemaless.Store]) -> schemaless.Store:
    return stores[0]


@pytest.fixture
def one(stores: tuple[schemaless.Store, schemaless.Store]) -> schemaless.Store:
    return stores[1]


# (query, ordered?): n is distinct, so an ordered answer is one list; the others are multisets.
QUERIES = [
    (lambda q: q.filter(n__gte=100).order_by("n")[:10], True),
    (lambda q: q.filter(n__gte=100).order_by("-n")[5:25], True),
    (lambda q: q.filter(n__lt=400).order_by("n")[3:33], True),
    (lambda q: list(q.filter(n__range=(10, 300)).order_by("-n")), True),
    (lambda q: q.filter(user_id__in=[1, 2, 3]).order_by("n")[:40], True),
    (lambda q: list(q.filter(user_id__gte=5).order_by("user_id")), False),
    (lambda q: list(q), False),
]


@pytest.mark.parametrize(("ask", "ordered"), QUERIES)
def test_a_scatter_query_answers_as_one_shard_does(
    two: schemaless.Store, one: schemaless.Store, ask: Any, ordered: bool
) -> None:
    def answer(store: schemaless.Store) -> list[tuple[int, int]]:
        found = [(e["n"], e["user_id"]) for e in ask(store.query("entry"))]
        return found if ordered else sorted(found)

    expected = answer(one)
    assert expected
    assert answer(two) == expected


def test_counts_and_pages_agree_with_one_shard(
    two: schemaless.Store, one: schemaless.Store
) -> None:
    for store in (two, one):
        query = store.query("entry").filter(n__gte=50).order_by("n")
        first = list(query[:7])
        assert query.count() == 450
        assert [e["n"] for e in first] == list(range(50, 57))
        assert [e["n"] for e in query.after(query.cursor(first[-1]))[:3]] == [57, 58, 59]


def test_a_stopped_shard_fails_the_query_rather_than_answer_from_the_other(
    two: schemaless.Store, servers: list[MySQLServer]
) -> None:
    query = two.query("entry").filter(n__gte=100).order_by("n")
    assert len(query[:10]) == 10
    servers[1].pause()
    try:
        started = time.monotonic()
        with pytest.raises(ShardUnavailable, match="s1"):
            list(query[:10])
        assert time.monotonic() - started < 5.0
        with pytest.raises(ShardUnavailable, match="s1"):
            two.query("entry").filter(n__gte=100).count()
    finally:
        servers[1].resume()
    _wait_until_answering(two)


def _wait_until_answering(store: schemaless.Store, within: float = 5.0) -> None:
    """Until the breaker of the resumed shard lets calls through again (about one timeout)."""
    deadline = time.monotonic() + within
    while True:
        try:
            store.query("entry").filter(n__gte=100).count()
            return
        except ShardUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_shards_first_pages_are_read_at_once(two: schemaless.Store) -> None:
    """With the index table write-locked on both servers, both wait for it at the same time."""
    query = two.query("entry").filter(n__gte=100).order_by("n")
    assert len(query[:10]) == 10  # the map, the registry and the plan, read before
    lockers = [mysql_connection(str(shard.engine.url)) for shard in two.shards]
    for conn in lockers:
        conn.cursor().execute("LOCK TABLES index_entry_by_n WRITE")
    answer: list[list[schemaless.Entity]] = []
    reader = threading.Thread(target=lambda: answer.append(list(query[:10])))
    try:
        assert [_waiting_on(conn, within=0.1) for conn in lockers] == [False, False]
        reader.start()
        waiting = [_waiting_on(conn) for conn in lockers]
    finally:
        for conn in lockers:
            conn.cursor().execute("UNLOCK TABLES")
            conn.close()
    reader.join(5.0)
    assert waiting == [True, True]
    assert [e["n"] for e in answer[0]] == list(range(100, 110))


def _waiting_on(conn: object, within: float = 0.8) -> bool:
    """Whether a statement of another session waits on index_entry_by_n within ``within`` s."""
    deadline = time.monotonic() + within
    cursor = conn.cursor()  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            "WHERE ID <> CONNECTION_ID() AND INFO LIKE '%%index_entry_by_n%%'"
        )
        if cursor.fetchone()[0]:
            return True
        time.sleep(0.02)
    return False


TIED = Index("tied_by_n", kind="tied", fields={"n": "int"})


def test_a_limited_scatter_query_answers_as_one_shard_does_with_ties_and_stale_rows(
    databases: list[str], servers: list[MySQLServer]
) -> None:
    """The shards' first pages, merged and checked (Reader._one_page), answer a limited query
    as one shard does: ties of the ordered field broken by id across the shards, and stale
    index rows (changed or deleted entities the indexer has not caught up with) skipped, the
    general reader taking over when the pages fall short."""
    name = f"c_tied_{secrets.token_hex(4)}"
    single = create_database(servers[0].url, name)
    two, one = schemaless.connect(databases), schemaless.connect(single)
    try:
        for store in (two, one):
            store.migrate()
            store.add_index(TIED)
        made = two.put_many("tied", [{"n": n % 7, "i": n} for n in range(120)])
        for entity in made:
            one.put("tied", entity.body, id=entity.id)
        assert {two.shards.shard_for_id(e.id.bytes) for e in made} == {0, 1}
        for store in (two, one):
            Worker(store, burst=True, install_signal_handlers=False).run()
            # Stale index rows: moved away from what the index says, or deleted, unindexed.
            for entity in made[::5]:
                store.put("tied", {**entity.body, "n": 100 + entity["i"]}, id=entity.id)
            for entity in made[1::9]:
                store.delete(entity.id)

        def answer(store: schemaless.Store, ask: Any) -> list[tuple[str, int]]:
            return [(str(e.id), e["i"]) for e in ask(store.query("tied"))]

        asks = [
            lambda q: q.filter(n__lt=5).order_by("-n")[:10],
            lambda q: q.filter(n__lt=5).order_by("n")[:10],
            lambda q: q.filter(n__gte=2).order_by("n")[3:20],
            lambda q: q.filter(n__gte=6).order_by("-n")[:40],  # fewer match than asked
            lambda q: q.filter(n__lte=6).order_by("-n")[:1],
            lambda q: q.filter(n__range=(1, 3)).order_by("n")[:100],
        ]
        for ask in asks:
            assert answer(two, ask) == answer(one, ask)
            assert answer(two, ask)  # each finds something
        # Past the stale rows too: the first pages fall short, the general reader answers.
        every = [lambda q, k=k: q.filter(n__gte=0).order_by("n")[:k] for k in (10, 25, 90)]
        for ask in every:
            assert answer(two, ask) == answer(one, ask)
    finally:
        two.close()
        one.close()
        drop_database(servers[0].url, name)
