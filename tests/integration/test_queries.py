"""Query edges, on SQLite and MySQL: empty ``in``, None, counting past an offset, NULLs merged
across shards, and bools that Python holds equal to ints but the store never does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import schemaless
from schemaless import Index, InvalidQuery
from schemaless.query import Query
from schemaless.testing import create_database, drop_database

BY_GROUP = Index("item_by_group", kind="item", fields={"grp": "int", "n": "int"})
BY_N = Index("item_by_n", kind="item", fields={"n": "int"})
BY_NAME = Index("item_by_name", kind="item", fields={"name": "str"})


@pytest.fixture
def items(sync_store: schemaless.Store) -> schemaless.Store:
    """Twenty items: grp 1 holds n 0..9, grp 2 holds n 10..19; every third one has a name."""
    for index in (BY_GROUP, BY_N, BY_NAME):
        sync_store.add_index(index)
    bodies = [
        {"grp": 1 + i // 10, "n": i} | ({"name": f"x{i}"} if i % 3 == 0 else {}) for i in range(20)
    ]
    sync_store.put_many("item", bodies)
    return sync_store


@pytest.fixture(params=["sqlite", "mysql"])
def two_shards(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[schemaless.Store]:
    """A store of two shards (two SQLite files, or two MySQL databases) indexing in sync."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / f's{n}.db'}" for n in range(2)]
        names: list[str] = []
    else:
        server = request.getfixturevalue("mysql_server")
        names = [f"t_q{n}_{id(request) % 10**8}" for n in range(2)]
        urls = [create_database(server, name) for name in names]
    store = schemaless.connect(urls, indexing="sync")
    store.migrate()
    yield store
    store.close()
    for name in names:
        drop_database(server, name)


def ns(query: Query) -> list[int | None]:
    return [e.get("n") for e in query]


# -- an empty in ---------------------------------------------------------------------------------

EMPTY_IN: list[Callable[[Query], Query]] = [
    lambda q: q.filter(grp=1, n__in=[]),
    lambda q: q.filter(grp__in=[], n=3),
    lambda q: q.filter(grp__in=[]),
    lambda q: q.filter(n__in=[]).order_by("-n"),
    lambda q: q.filter(grp=1, n__in=[]).order_by("n")[:3],
    lambda q: q.filter(grp=2, n__in=()).filter(n__gte=12)[1:],
    lambda q: q.filter(name__in=[]),
    lambda q: q.scan().filter(grp=1, n__in=[]),
]


@pytest.mark.parametrize("make", EMPTY_IN)
def test_an_empty_in_anywhere_matches_nothing(
    items: schemaless.Store, make: Callable[[Query], Query]
) -> None:
    query = make(items.query("item"))
    assert make(items.query("item")).count() == 0  # a fresh query: counted, not evaluated
    assert list(query) == [] and len(query) == 0 and query.first() is None
    assert not make(items.query("item")).exists()


def test_an_in_of_none_alone_matches_the_missing_values(items: schemaless.Store) -> None:
    query = items.query("item").filter(name__in=[None])
    assert query.count() == 13 and sorted(ns(query)) == [i for i in range(20) if i % 3]


# -- None ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookups",
    [
        {"name__startswith": None},
        {"grp": 1, "n__gt": None},
        {"grp": 1, "n__lte": None},
        {"grp": 1, "n__range": (None, 5)},
        {"grp": 1, "n__range": (2, None)},
        {"name__in": None},
    ],
)
def test_none_to_a_lookup_other_than_exact_is_refused_before_any_sql(
    items: schemaless.Store, lookups: dict[str, object]
) -> None:
    with pytest.raises(InvalidQuery):
        items.query("item").filter(**lookups)  # raised while building: nothing ran
    with pytest.raises(InvalidQuery):
        items.query("item").scan().filter(**lookups)


def test_none_to_exact_finds_the_missing_values(items: schemaless.Store) -> None:
    assert items.query("item").filter(name=None).count() == 13


# -- count() with an offset ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop"), [(0, None), (3, None), (3, 5), (9, 30), (10, None), (25, None), (2, 2)]
)
def test_count_of_a_slice_is_the_length_of_that_slice(
    items: schemaless.Store, start: int, stop: int | None
) -> None:
    def sliced() -> Query:
        return items.query("item").filter(grp=1).order_by("n")[start:stop]

    expected = list(range(10))[start:stop]
    assert sliced().count() == len(expected)  # from the index, before any evaluation
    assert ns(sliced()) == expected and len(sliced()) == len(expected)
    assert items.query("item").filter(n__gte=0)[start:stop].count() == len(range(20)[start:stop])


# -- NULLs merged across shards ------------------------------------------------------------------


def test_nulls_sort_first_ascending_and_last_descending_across_shards(
    two_shards: schemaless.Store,
) -> None:
    two_shards.add_index(BY_N)
    made = two_shards.put_many("item", [{"n": i} if i % 2 else {"k": i} for i in range(40)])
    homes = {(two_shards.shards.shard_for_id(e.id.bytes), "n" in e.body) for e in made}
    assert len(homes) == 4, "each shard holds items with and without n"
    ascending = [None] * 20 + [i for i in range(40) if i % 2]
    query = two_shards.query("item").filter(n__in=[None, *range(40)])
    assert ns(query.order_by("n")) == ascending
    assert ns(query.order_by("-n")) == ascending[::-1]
    assert ns(query.order_by("n")[18:23]) == ascending[18:23]
    assert ns(query.order_by("-n")[18:23]) == ascending[::-1][18:23]
    page = query.order_by("n")[:19]
    rest = query.order_by("n").after(list(page)[-1])
    assert ns(rest) == ascending[19:]


# -- bools are not ints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookups", "expected"),
    [
        ({"v": True}, [True]),
        ({"v": 1}, [1]),
        ({"v": False}, [False]),
        ({"v": 0}, [0]),
        ({"v__in": [True]}, [True]),
        ({"v__in": [1, 7]}, [1]),
        ({"v__in": [0, None]}, [0, None]),
    ],
)
def test_a_scan_never_matches_true_with_1_nor_false_with_0(
    store: schemaless.Store, lookups: dict[str, object], expected: list[object]
) -> None:
    store.put_many("flag", [{"v": v} for v in (True, 1, False, 0, "1", None)])
    found = [e["v"] for e in store.query("flag").scan().filter(**lookups)]
    assert sorted(map(repr, found)) == sorted(map(repr, expected))  # repr tells True from 1
