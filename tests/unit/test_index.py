"""Index definitions and the rows they extract from a body."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from schemaless import ConfigurationError, Index, InvalidName
from schemaless.index import WrongType

BY_USER = Index("entry_by_user", kind="entry", fields={"user_id": "int", "published": "datetime"})


def test_missing_and_none_fields_give_null() -> None:
    assert BY_USER.rows({"title": "x"}) == [(None, None)]
    assert BY_USER.rows({"user_id": None, "published": None}) == [(None, None)]


def test_aware_datetimes_become_naive_utc_and_naive_ones_are_taken_as_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    aware = dt.datetime(2026, 1, 1, 13, 0, tzinfo=paris)
    naive = dt.datetime(2026, 1, 1, 12, 0)
    assert BY_USER.rows({"user_id": 1, "published": aware}) == [(1, naive)]
    assert BY_USER.rows({"user_id": 1, "published": naive}) == [(1, naive)]


def test_a_list_makes_one_row_per_distinct_element() -> None:
    ix = Index("by_tag", kind="entry", fields={"tags": "str", "user_id": "int"})
    assert ix.rows({"tags": ["a", "b", "a"], "user_id": 1}) == [("a", 1), ("b", 1)]
    assert ix.rows({"tags": [], "user_id": 1}) == [(None, 1)]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", "7"),
        ("int", True),
        ("int", 2**64),
        ("float", "1.0"),
        ("str", 7),
        ("str", "x" * 256),
        ("bool", 1),
        ("datetime", "2026-01-01"),
        ("uuid", 5),
        ("bytes", "text"),
    ],
)
def test_a_value_of_the_wrong_type_raises_wrong_type(kind: str, value: object) -> None:
    ix = Index("ix", kind="k", fields={"f": kind})
    with pytest.raises(WrongType):
        ix.rows({"f": value})


def test_uuid_fields_take_uuids_and_their_strings() -> None:
    ix = Index("ix", kind="k", fields={"owner": "uuid"})
    u = uuid.uuid4()
    assert ix.rows({"owner": u}) == ix.rows({"owner": str(u)}) == [(u.bytes,)]


def test_a_partial_index_covers_only_bodies_matching_its_where() -> None:
    ix = Index("pub", kind="entry", fields={"user_id": "int"}, where={"status": "published"})
    assert ix.rows({"user_id": 1, "status": "published"}) == [(1,)]
    assert ix.rows({"user_id": 1, "status": "draft"}) == []
    assert ix.rows({"user_id": 1}) == []
    flagged = Index("flagged", kind="entry", fields={"user_id": "int"}, where={"flag": True})
    assert flagged.rows({"user_id": 1, "flag": 1}) == []


def test_definitions_round_trip_and_compare_equal() -> None:
    ix = Index(
        "pub", kind="entry", fields={"b": "int", "a": "str"}, shard_on="b", where={"status": "x"}
    )
    again = Index.from_definition(ix.definition())
    assert again == ix and list(again.fields) == ["b", "a"] and hash(again) == hash(ix)
    assert ix != Index(
        "pub", kind="entry", fields={"a": "str", "b": "int"}, shard_on="b", where={"status": "x"}
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "Bad"}, InvalidName),
        ({"kind": "Bad"}, InvalidName),
        ({"fields": {}}, ConfigurationError),
        ({"fields": {"f": "decimal"}}, ConfigurationError),
        ({"fields": {"entity_id": "int"}}, InvalidName),
        ({"fields": {"entity_row": "int"}}, InvalidName),  # the index table's primary key
        ({"fields": {"Bad": "int"}}, InvalidName),
        ({"shard_on": "nope"}, ConfigurationError),
        ({"where": {"f": [1]}}, ConfigurationError),
        ({"defaults": {"g": 1}}, ConfigurationError),  # not a field of the index
        ({"defaults": {"f": "one"}}, ConfigurationError),  # not an int
        ({"defaults": [("f", 1)]}, ConfigurationError),
        ({"descending": ["g"]}, ConfigurationError),  # not a field of the index
        ({"descending": "f"}, ConfigurationError),  # a str would iterate as letters
    ],
)
def test_bad_definitions_raise_typed_errors(kwargs: dict, error: type[Exception]) -> None:
    args = {"name": "ix", "kind": "k", "fields": {"f": "int"}, **kwargs}
    name = args.pop("name")
    with pytest.raises(error):
        Index(name, **args)


def test_a_field_the_body_lacks_is_indexed_as_its_default() -> None:
    ix = Index("st", kind="entry", fields={"state": "str", "n": "int"}, defaults={"state": "new"})
    assert ix.rows({"n": 1}) == [("new", 1)]
    assert ix.rows({"n": 1, "state": None}) == [(None, 1)]  # a None held is not missing
    assert ix.rows({"n": 1, "state": "done"}) == [("done", 1)]
    partial = Index("p", kind="entry", fields={"n": "int"}, where={"on": True}, defaults={})
    assert partial.rows({"n": 1}) == []


def test_defaults_round_trip_through_the_definition() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    an_id = uuid.uuid4()
    ix = Index(
        "d",
        kind="entry",
        fields={"at": "datetime", "u": "uuid", "b": "bytes", "tags": "str", "x": "float"},
        defaults={"at": when, "u": an_id, "b": b"\x00\xff", "tags": ["a", "b"], "x": 1.5},
    )
    again = Index.from_definition(ix.definition())
    assert again == ix and again.defaults == ix.defaults
    assert ix != Index("d", kind="entry", fields=ix.fields)


def test_a_definition_stored_before_defaults_loads_and_compares_equal() -> None:
    old = (
        '{"fields": [["user_id", "int"]], "kind": "entry", "name": "by_user", '
        '"shard_on": null, "where": []}'
    )
    ix = Index.from_definition(old)
    assert ix.defaults == {} and ix.definition() == old
    assert ix == Index("by_user", kind="entry", fields={"user_id": "int"})


def test_descending_fields_round_trip_in_key_order_and_make_another_definition() -> None:
    fields = {"user_id": "int", "published": "datetime", "title": "str"}
    ix = Index("d", kind="entry", fields=fields, descending=["title", "published"])
    assert ix.descending == ("published", "title")
    again = Index.from_definition(ix.definition())
    assert again == ix and again.descending == ix.descending
    assert ix != Index("d", kind="entry", fields=fields)
    assert "descending" not in Index("d", kind="entry", fields=fields).definition()
