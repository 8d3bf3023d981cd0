"""Strings in an index compare and order exactly as Python compares str, on SQLite and MySQL.

MariaDB's ``utf8mb4_bin`` pads with spaces (``'a' = 'a '``, ``'a\\t' < 'a'``) and compares a
literal under the connection's collation; every answer here is checked against what Python
computes over the same values: ``sorted``, ``<``, ``==`` and ``str.startswith``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

import schemaless
from schemaless import Index
from schemaless.query import Query
from schemaless.testing import actual_rows, expected_rows

BY_NAME = Index("person_by_name", kind="person", fields={"name": "str"})
BY_GROUP = Index("person_by_group", kind="person", fields={"grp": "int", "name": "str"})

# Trailing and leading blanks, controls, case, accents (composed and not), astral and the last
# code points, the empty string, 255 characters of 4 bytes (the column's 1020 bytes); "a"
# twice, so that counting counts entities, not values.
NAMES = [
    "", "a", "a", "a ", "a  ", "a\t", "a\n", "a\x00", " a", "\ta", "A", "A ", "B", "b", "Ba",
    "ba", "b ", "é", "e\u0301", "ß", "ss", "z", "Z", "😀", "\U0010ffff", "a\U0010ffff", "\ud7ff",
    "\ue000", "x" * 255, "é" * 255, "😀" * 255,
]  # fmt: skip
PIVOTS = sorted(set(NAMES)) + ["a\x01", "a\x1f", "b\x00", "\U0001f600\x00", "AA"]
PREFIXES = ["", "a", "a ", "a\t", "A", "b", "B", "é", "e", "\U0010ffff", "x" * 10, "\ud7ff"]
LOOKUPS: dict[str, Callable[[str, str], bool]] = {
    "gt": lambda s, p: s > p,
    "gte": lambda s, p: s >= p,
    "lt": lambda s, p: s < p,
    "lte": lambda s, p: s <= p,
}


@pytest.fixture
def people(sync_store: schemaless.Store) -> schemaless.Store:
    """Every name of NAMES once per entity (in group 1), and one entity without a name."""
    sync_store.add_index(BY_NAME)
    sync_store.add_index(BY_GROUP)
    sync_store.put_many("person", [{"name": n, "grp": 1} for n in NAMES] + [{"grp": 1}])
    return sync_store


def names(query: Query) -> list[str | None]:
    return [e.get("name") for e in query]


def check(query: Query, expected: list[str]) -> None:
    """The query's answer, as a multiset and by count(), is what Python computed."""
    assert query.count() == len(expected)  # first: read from the index, nothing evaluated yet
    assert Counter(names(query)) == Counter(expected)
    assert len(query) == len(expected)


def test_index_rows_hold_the_strings_as_put(people: schemaless.Store) -> None:
    for index in (BY_NAME, BY_GROUP):
        assert Counter(actual_rows(people, index)) == Counter(expected_rows(people, index))
    held = Counter(row[0] for row in actual_rows(people, BY_NAME))  # a row per entity
    assert held == Counter([*NAMES, None])


def test_equality_matches_only_the_same_string(people: schemaless.Store) -> None:
    query = people.query("person")
    for name in set(NAMES):
        check(query.filter(name=name), [n for n in NAMES if n == name])
        check(query.filter(grp=1, name=name), [n for n in NAMES if n == name])
    check(query.filter(name="a"), ["a", "a"])  # not "a ", "a  ", "a\t", "a\x00" nor "A"
    check(query.filter(name="a\x00\x00"), [])


@pytest.mark.parametrize(
    "lookups", [{"name": "\ud800"}, {"name__startswith": "a\udfff"}, {"name__in": ["a", "\ud800"]}]
)
def test_a_lone_surrogate_is_refused_before_any_sql(
    people: schemaless.Store, lookups: dict[str, object]
) -> None:
    """It has no UTF-8 form: no body holds one, and no backend could bind it."""
    with pytest.raises(schemaless.InvalidQuery):
        list(people.query("person").filter(**lookups))


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_comparisons_agree_with_python(people: schemaless.Store, lookup: str) -> None:
    compare = LOOKUPS[lookup]
    for pivot in PIVOTS:
        expected = [n for n in NAMES if compare(n, pivot)]
        check(people.query("person").filter(**{f"name__{lookup}": pivot}), expected)
        check(people.query("person").filter(grp=1, **{f"name__{lookup}": pivot}), expected)


@pytest.mark.parametrize(
    ("low", "high"), [("B", "b"), ("A", "a"), ("a", "a "), ("a", "B"), ("Z", "a"), ("", "\t")]
)
def test_ranges_whose_bounds_differ_only_in_case_or_blanks(
    people: schemaless.Store, low: str, high: str
) -> None:
    expected = [n for n in NAMES if low <= n <= high]
    check(people.query("person").filter(name__range=(low, high)), expected)
    check(people.query("person").filter(grp=1, name__range=(low, high)), expected)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_startswith_agrees_with_python(people: schemaless.Store, prefix: str) -> None:
    expected = [n for n in NAMES if n.startswith(prefix)]
    ordered = people.query("person").filter(name__startswith=prefix).order_by("name")
    assert names(ordered) == sorted(expected)
    check(people.query("person").filter(grp=1, name__startswith=prefix), expected)


def test_in_matches_each_string_exactly(people: schemaless.Store) -> None:
    wanted = ["a", "a ", "B", "é", "nobody"]
    check(people.query("person").filter(name__in=wanted), [n for n in NAMES if n in wanted])
    check(people.query("person").filter(name__in=[None, "A"]), [None, "A"])  # type: ignore[list-item]


def test_order_is_pythons_sorted_with_missing_names_first(people: schemaless.Store) -> None:
    ascending = [None, *sorted(NAMES)]
    for query in (people.query("person"), people.query("person").filter(grp=1)):
        assert names(query.order_by("name")) == ascending
        assert names(query.order_by("-name")) == ascending[::-1]


@pytest.mark.parametrize("order", ["name", "-name"])
def test_keyset_pages_resume_between_strings_that_differ_in_blanks(
    people: schemaless.Store, order: str
) -> None:
    query = people.query("person").filter(grp=1).order_by(order)
    seen: list[str | None] = []
    page = query[:4]
    while page:
        seen += names(page)
        token = query.cursor(list(page)[-1])
        page = query.after(token)[:4]
    assert seen == names(query) and len(seen) == len(NAMES) + 1
