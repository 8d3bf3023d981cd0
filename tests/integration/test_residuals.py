"""Residual conditions, on SQLite and MySQL: an index that drives one condition serves the query,
the others are checked on the entities it yields, at most ``max_examined`` of them; an ``in``
before the ordered field is read a value at a time and merged."""

from __future__ import annotations

import pytest

import schemaless
from schemaless import Index, IndexRequired
from schemaless.query import Query

BY_GROUP = Index("item_by_group", kind="item", fields={"grp": "int", "n": "int"}, shard_on="grp")


@pytest.fixture
def items(sync_store: schemaless.Store) -> schemaless.Store:
    """Thirty items: grp g holds n 10g..10g+9 (g = 0, 1, 2); n even is "even", else "odd"."""
    sync_store.add_index(BY_GROUP)
    bodies = [
        {"grp": i // 10, "n": i, "parity": "odd" if i % 2 else "even", "tags": [f"t{i % 3}"]}
        for i in range(30)
    ]
    sync_store.put_many("item", bodies)
    return sync_store


def ns(query: Query) -> list[int]:
    return [e["n"] for e in query]


def test_an_index_driving_one_condition_serves_and_checks_the_others(
    items: schemaless.Store,
) -> None:
    q = items.query("item").filter(grp=1, parity="odd").order_by("-n")
    assert ns(q) == [19, 17, 15, 13, 11]
    assert ns(q[1:3]) == [17, 15]
    assert ns(items.query("item").filter(grp=2, tags="t0", n__gte=21)) == [21, 24, 27]


def test_a_range_then_a_condition_past_it_is_residual(items: schemaless.Store) -> None:
    assert ns(items.query("item").filter(grp__gte=2, n=25)) == [25]


def test_count_of_a_residual_query_counts_the_entities_that_match(
    items: schemaless.Store,
) -> None:
    assert items.query("item").filter(grp=0, parity="even").count() == 5
    assert items.query("item").filter(grp=0, parity="even")[:2].count() == 2


def test_past_max_examined_index_required_names_the_count_and_the_index(
    items: schemaless.Store,
) -> None:
    q = items.query("item").filter(grp=0, parity="none").max_examined(4)
    with pytest.raises(IndexRequired, match=r"examined 4 entities .*item_by_group.*\(grp, parity"):
        list(q)
    with pytest.raises(IndexRequired, match="examined 4"):
        q.count()
    assert ns(items.query("item").filter(grp=0, parity="none").max_examined(10)) == []


def test_a_limit_found_within_max_examined_reads_no_further(items: schemaless.Store) -> None:
    q = items.query("item").filter(grp=0, parity="odd").order_by("n").max_examined(4)
    assert ns(q[:2]) == [1, 3]
    with pytest.raises(IndexRequired):
        list(q)


def test_a_fully_served_query_is_never_bounded(items: schemaless.Store) -> None:
    assert len(items.query("item").filter(grp=1).max_examined(1)) == 10


def test_a_query_no_index_can_drive_raises_index_required(items: schemaless.Store) -> None:
    with pytest.raises(IndexRequired, match="item_by_group"):
        items.query("item").filter(parity="odd")
    with pytest.raises(IndexRequired):
        list(items.query("item").filter(n=3))  # n follows grp: no index leads with it
    assert ns(items.query("item").scan().filter(parity="odd", n__lt=4)) == [1, 3]


def test_keyset_pagination_through_a_residual_query(items: schemaless.Store) -> None:
    q = items.query("item").filter(grp=2, parity="even").order_by("n")
    page = q[:2]
    assert ns(page) == [20, 22]
    assert ns(q.after(list(page)[-1])[:2]) == [24, 26]


def test_a_check_is_residual_and_needs_a_driven_condition(items: schemaless.Store) -> None:
    q = items.query("item").filter(grp=1).check(lambda e: e["n"] % 5 == 0)
    assert ns(q) == [10, 15]
    assert q.count() == 2
    with pytest.raises(IndexRequired):
        list(q.max_examined(3))
    with pytest.raises(IndexRequired):
        list(items.query("item").check(lambda e: True))
    assert ns(items.query("item").scan().check(lambda e: e["n"] > 27)) == [28, 29]


def test_an_in_before_the_ordered_field_merges_the_values_in_order(
    items: schemaless.Store,
) -> None:
    q = items.query("item").filter(grp__in=[2, 0, 2]).order_by("-n")
    assert ns(q[:4]) == [29, 28, 27, 26]
    assert ns(q)[9:12] == [20, 9, 8]
    assert ns(q.after(list(q[:10])[-1])[:2]) == [9, 8]
    asc = items.query("item").filter(grp__in=[1, 0], n__gte=8).order_by("n")
    assert ns(asc[:4]) == [8, 9, 10, 11]
    assert asc.count() == 12


def test_an_in_with_an_order_on_a_field_pinned_by_exact(items: schemaless.Store) -> None:
    assert ns(items.query("item").filter(grp__in=[1], n=12).order_by("n")) == [12]
