"""Conditions checked against bodies: the re-check that makes stale index rows harmless."""

from __future__ import annotations

import datetime as dt

import pytest

from schemaless import InvalidQuery
from schemaless.lookups import Condition, passes


def holds(key: str, value: object, body: dict, kind: str | None = "int") -> bool:
    return Condition.parse(key, value).matches(body, kind)


def test_exact_and_none() -> None:
    assert holds("n", 3, {"n": 3})
    assert not holds("n", 3, {"n": 4})
    assert holds("n", None, {}) and holds("n", None, {"n": None}) and holds("n", None, {"n": []})
    assert not holds("n", None, {"n": 0})


def test_a_list_matches_when_any_element_does() -> None:
    assert holds("tags", "a", {"tags": ["b", "a"]}, "str")
    assert not holds("tags", "c", {"tags": ["b", "a"]}, "str")
    assert holds("n__gt", 5, {"n": [1, 9]})


@pytest.mark.parametrize(
    ("key", "value", "n", "expected"),
    [
        ("n__gt", 3, 4, True),
        ("n__gt", 3, 3, False),
        ("n__gte", 3, 3, True),
        ("n__lt", 3, 2, True),
        ("n__lte", 3, 4, False),
        ("n__range", (1, 3), 3, True),
        ("n__range", (1, 3), 4, False),
        ("n__in", [1, 2], 2, True),
        ("n__in", [1, None], None, True),
        ("n__gt", 3, None, False),
    ],
)
def test_comparisons(key: str, value: object, n: object, expected: bool) -> None:
    assert holds(key, value, {"n": n}) is expected


def test_wrong_types_in_bodies_never_match() -> None:
    assert not holds("n", 1, {"n": True})
    assert not holds("n__gt", 1, {"n": "zzz"})


def test_startswith_is_case_sensitive() -> None:
    assert holds("t__startswith", "ap", {"t": "apple"}, "str")
    assert not holds("t__startswith", "ap", {"t": "Apple"}, "str")


def test_datetimes_compare_as_utc() -> None:
    aware = dt.datetime(2026, 1, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert holds("d", dt.datetime(2026, 1, 1, 12), {"d": aware}, "datetime")
    assert holds("d__gte", aware, {"d": dt.datetime(2026, 1, 1, 12)}, None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n__near", 1),
        ("n__in", 5),
        ("n__in", "ab"),
        ("n__range", (1,)),
        ("n__startswith", 3),
        ("n__gt", None),
    ],
)
def test_bad_lookups_raise_invalid_query(key: str, value: object) -> None:
    with pytest.raises(InvalidQuery):
        Condition.parse(key, value)


def test_tests_agree_with_matches_on_plain_and_other_bodies() -> None:
    conditions = [Condition.parse(k, v) for k, v in {"n": 5, "tags": "a", "m__gt": 1}.items()]
    kinds = ["int", "str", "int"]
    tests = tuple(c.test(kind) for c, kind in zip(conditions, kinds, strict=True))
    bodies = [
        {"n": 5, "tags": "a", "m": 2},  # plainly equal: no call to matches
        {"n": 5, "tags": ["b", "a"], "m": [0, 3]},  # lists: matches decides
        {"n": 6, "tags": "a", "m": 2},
        {"n": True, "tags": "a", "m": 2},  # True == 1 in Python, but not the int 5... nor 1
        {"n": 5.0, "tags": "a", "m": 2},  # a float does not fit an int index
        {"tags": "a", "m": 2},
    ]
    for body in bodies:
        expected = all(c.matches(body, k) for c, k in zip(conditions, kinds, strict=True))
        assert passes(body, tests) is expected
    assert [passes(b, tests) for b in bodies] == [True, True, False, False, False, False]
