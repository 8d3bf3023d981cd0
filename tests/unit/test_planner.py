"""The planner: which index serves which query, and the errors when none does."""

from __future__ import annotations

import datetime as dt

import pytest

from schemaless import Index, IndexNotReady, IndexRequired, InvalidQuery
from schemaless.lookups import Condition
from schemaless.planner import choose
from schemaless.registry import Entry

BY_USER = Index("by_user", kind="entry", fields={"user_id": "int", "published": "datetime"})
BY_TAG = Index("by_tag", kind="entry", fields={"tag": "str"})
PUBLISHED = Index("pub", kind="entry", fields={"user_id": "int"}, where={"status": "published"})
T = dt.datetime(2026, 1, 1)
READY = [Entry(BY_USER, "ready"), Entry(BY_TAG, "ready")]


def plan(*order: str, entries: list[Entry] = READY, **lookups: object):  # noqa: ANN201
    conditions = [Condition.parse(k, v) for k, v in lookups.items()]
    return choose("entry", conditions, order, entries)


def test_equality_on_the_leading_field_then_order_on_the_next() -> None:
    p = plan("-published", user_id=7)
    assert p.index == BY_USER and p.key == ("published",) and p.desc


def test_a_range_on_the_next_field_is_served() -> None:
    assert plan(user_id=7, published__gte=dt.datetime(2026, 1, 1)).index == BY_USER


def test_a_range_on_the_first_field_with_its_order() -> None:
    assert plan("user_id", user_id__gt=3).index == BY_USER


def test_no_filter_and_no_order_needs_no_index() -> None:
    assert plan().index is None


@pytest.mark.parametrize(
    ("order", "lookups"),
    [
        ((), {"published__gte": T}),
        (("published",), {}),
        ((), {"title": "x"}),
        (("title",), {"user_id": 1}),
        (("published",), {"title": "x"}),
    ],
)
def test_queries_no_index_serves_raise_index_required(order: tuple, lookups: dict) -> None:
    with pytest.raises(IndexRequired, match="by_user"):
        plan(*order, **lookups)


def test_a_building_index_raises_index_not_ready_unless_partial_is_allowed() -> None:
    entries = [Entry(BY_USER, "building")]
    with pytest.raises(IndexNotReady):
        plan(entries=entries, user_id=1)
    conditions = [Condition.parse("user_id", 1)]
    assert choose("entry", conditions, (), entries, allow_partial=True).index == BY_USER


def test_a_partial_index_serves_only_queries_naming_its_where() -> None:
    entries = [Entry(PUBLISHED, "ready")]
    assert plan(entries=entries, user_id=1, status="published").index == PUBLISHED
    with pytest.raises(IndexRequired):
        plan(entries=entries, user_id=1)
    with pytest.raises(IndexRequired):
        plan(entries=entries, user_id=1, status="draft")


def test_the_index_with_more_leading_equalities_wins() -> None:
    both = Index("both", kind="entry", fields={"user_id": "int", "tag": "str"})
    entries = [*READY, Entry(both, "ready")]
    assert plan(entries=entries, user_id=1, tag="x").index == both


def test_a_value_that_does_not_fit_the_field_raises_invalid_query() -> None:
    with pytest.raises(InvalidQuery):
        plan(user_id="seven")


def test_mixed_order_directions_raise_invalid_query() -> None:
    with pytest.raises(InvalidQuery):
        plan("user_id", "-published")


@pytest.mark.parametrize(
    "lookups",
    [
        {"user_id__startswith": "1"},  # a prefix of an int field: no such int
        {"tag__startswith": "x\ud800"},  # a str with no UTF-8 form fits no str field
        {"tag__startswith": "x" * 256},  # longer than any indexed str
    ],
)
def test_a_prefix_the_field_cannot_hold_raises_invalid_query(lookups: dict[str, object]) -> None:
    with pytest.raises(InvalidQuery):
        plan(**lookups)


def test_an_empty_in_is_planned_like_any_other() -> None:
    p = plan("published", user_id__in=[])
    assert p.index == BY_USER and p.key == ("published",)


def test_an_index_driving_one_condition_serves_and_the_others_are_residual() -> None:
    p = plan("-published", user_id=7, title="x", tag="y")
    assert p.index == BY_USER and p.key == ("published",) and p.residual == (1, 2)


def test_conditions_past_the_range_field_are_residual() -> None:
    p = plan(user_id__gt=1, published__gt=T)
    assert p.index == BY_USER and p.residual == (1,)


def test_the_index_driving_more_conditions_wins() -> None:
    p = plan(user_id=7, published__gte=T, tag="x")
    assert p.index == BY_USER and p.residual == (2,)
    assert plan(tag="x", title="t").index == BY_TAG


def test_a_fully_served_query_has_no_residual() -> None:
    assert plan("-published", user_id=7, published__lt=T).residual == ()


def test_an_order_the_index_cannot_give_is_not_served_even_with_a_driven_condition() -> None:
    with pytest.raises(IndexRequired):
        plan("published", user_id__gt=7)


def test_an_in_before_the_ordered_field_is_read_a_value_at_a_time() -> None:
    p = plan("-published", user_id__in=[1, 2])
    assert p.index == BY_USER and p.key == ("published",) and p.split == ("user_id",)
    assert plan("user_id", "published", user_id__in=[1, 2]).split == ()


def test_an_order_on_a_field_pinned_by_exact_orders_nothing() -> None:
    grp = Index("grp_n", kind="entry", fields={"grp": "int", "n": "int"})
    p = plan("n", entries=[Entry(grp, "ready")], grp__in=[1], n=2)
    assert p.index == grp and p.residual == () and p.split == ()
