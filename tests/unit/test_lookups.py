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
        ("n__isnull", 1),  # True or False only
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


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name__gt", None),
        ("name__gte", None),
        ("name__lt", None),
        ("name__lte", None),
        ("name__startswith", None),
        ("name__range", (None, "b")),
        ("name__range", ("a", None)),
        ("name__in", None),
    ],
)
def test_none_is_refused_by_every_lookup_but_exact_and_in(key: str, value: object) -> None:
    with pytest.raises(InvalidQuery):
        Condition.parse(key, value)


def test_none_is_a_value_to_exact_and_to_in() -> None:
    assert Condition.parse("name", None).sql("str") == ("null", ())
    assert Condition.parse("name__in", [None, "a"]).sql("str") == ("in_or_null", ("a",))


def test_only_an_empty_in_matches_nothing() -> None:
    assert Condition.parse("n__in", []).matches_nothing
    assert Condition.parse("n__in", ()).matches_nothing
    assert not Condition.parse("n__in", [None]).matches_nothing
    assert not Condition.parse("n__in", [1]).matches_nothing
    assert not Condition.parse("n", None).matches_nothing


STRINGS = [
    "", "a", "a ", "a\t", "ab", "a\U0010ffff", "a\U0010ffffz", "b", "\ud7ff", "\ud7ffx",
    "\ue000", "\U0010ffff", "\U0010ffff\U0010ffff", "é", "z",
]  # fmt: skip


@pytest.mark.parametrize(
    "prefix", ["a", "a ", "a\U0010ffff", "\U0010ffff", "\ud7ff", "é", "\U0010ffff\U0010ffff"]
)
def test_a_prefix_becomes_the_range_of_exactly_the_strings_that_start_with_it(
    prefix: str,
) -> None:
    form, bounds = Condition.parse("s__startswith", prefix).sql("str")
    low, high = bounds if form == "prefix" else (*bounds, None)
    assert form in ("prefix", "gte") and low == prefix
    for s in STRINGS:
        in_range = low <= s and (high is None or s < high)
        assert in_range is s.startswith(prefix), (prefix, s)
    assert high is None or all(ord(c) < 0xD800 or ord(c) > 0xDFFF for c in high)


def test_isnull_false_holds_for_any_value_and_true_is_exact_none() -> None:
    assert Condition.parse("n__isnull", True) == Condition("n", "exact", None)
    assert holds("n__isnull", False, {"n": 0}) and holds("n__isnull", False, {"n": "x"})
    assert not holds("n__isnull", False, {}) and not holds("n__isnull", False, {"n": None})
    assert not holds("n__isnull", False, {"n": []}) and holds("n__isnull", False, {"n": [None, 1]})
    assert Condition.parse("n__isnull", False).sql("int") == ("any", ())
    made = Condition("n", "isnull", True)  # made directly, not parsed: still IS NULL
    assert made.sql("int") == ("null", ()) and made.matches({}, "int")
    assert not made.matches({"n": 0}, "int")
