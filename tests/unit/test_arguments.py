"""Wrong-type arguments to Index() and connect() raise our typed errors, never a TypeError
(``unhashable type``) or an AttributeError from deep inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import schemaless
from schemaless import ConfigurationError, Index, InvalidName


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"shard_on": ["user_id"]}, ConfigurationError, "shard_on must name one field"),
        ({"shard_on": {"user_id": 1}}, ConfigurationError, "shard_on must name one field"),
        ({"shard_on": 7}, ConfigurationError, "shard_on must name one field"),
        ({"fields": [("user_id", "int")]}, ConfigurationError, "fields must map"),
        ({"fields": ["user_id"]}, ConfigurationError, "fields must map"),
        ({"fields": "user_id"}, ConfigurationError, "fields must map"),
        ({"fields": None}, ConfigurationError, "fields must map"),
        ({"fields": {"user_id": ["int"]}}, ConfigurationError, "unknown type"),
        ({"fields": {"user_id": int}}, ConfigurationError, "unknown type"),
        ({"fields": {7: "int"}}, InvalidName, "invalid field name"),
        ({"where": [("status", "x")]}, ConfigurationError, "where must map"),
        ({"where": "status"}, ConfigurationError, "where must map"),
        ({"where": {("a", "b"): 1}}, InvalidName, "invalid field name"),
        ({"name": ["ix"]}, InvalidName, "invalid index name"),
        ({"kind": None}, InvalidName, "invalid kind"),
    ],
)
def test_wrong_types_to_index_raise_typed_errors(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"name": "ix", "kind": "entry", "fields": {"user_id": "int"}}
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(error, match=message):
        Index(name, **args)


def test_a_right_index_still_builds() -> None:
    ix = Index("ix", kind="entry", fields={"user_id": "int"}, shard_on="user_id", where={"a": 1})
    assert ix.shard_on == "user_id" and ix.where == {"a": 1}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"serializer": ["msgpack"]},
        {"serializer": None},
        {"allow_pickle": "no"},
        {"serializer": "pickle", "allow_pickle": "yes"},
        {"compress_threshold": "1"},
        {"compress_threshold": None},
        {"compress_threshold": -1},
        {"max_entity_size": "1"},
        {"max_entity_size": 0},
        {"max_entity_size": 1.5},
        {"indexing": ["sync"]},
        {"timeout": [1]},
    ],
)
def test_wrong_options_to_connect_raise_configuration_error(
    kwargs: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError):
        schemaless.connect(f"sqlite:///{tmp_path / 'x.db'}", **kwargs)


@pytest.mark.parametrize(
    "url",
    [
        7,
        ["sqlite:///x.db", 7],
        {"s0": 7},
        "not a url",
    ],
)
def test_wrong_urls_to_connect_raise_configuration_error(url: Any) -> None:
    with pytest.raises(ConfigurationError):
        schemaless.connect(url)


def test_an_unknown_engine_option_raises_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        schemaless.connect(f"sqlite:///{tmp_path / 'x.db'}", no_such_option=1)


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"batch_size": 1001}, {"poll_interval": 0}])
def test_indexer_options_out_of_range_raise_configuration_error(options: dict[str, Any]) -> None:
    from schemaless_indexer.worker import IndexerOptions

    with pytest.raises(ConfigurationError):
        IndexerOptions(**options)
