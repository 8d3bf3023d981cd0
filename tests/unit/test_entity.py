"""Entity: its body is a deep copy at any depth the codec stores, and equality survives depth."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from schemaless.codec import MAX_DEPTH, Codec
from schemaless.entity import Entity
from schemaless.errors import EncodeError


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of alternating dicts and lists around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def entity(body: dict[str, Any], version: int = 1) -> Entity:
    return Entity(uuid.UUID(int=7), "entry", version, body)


def test_body_is_a_deep_copy() -> None:
    e = entity({"tags": ["a"], "meta": {"seen": [1]}, "at": datetime.now(timezone.utc)})
    body = e.body
    body["tags"].append("b")
    body["meta"]["seen"].append(2)
    body["new"] = 1
    assert e.body == {"tags": ["a"], "meta": {"seen": [1]}, "at": e["at"]}


def test_body_copies_mutable_leaves_a_pickle_may_hold() -> None:
    e = entity({"s": {1, 2}, "t": ([1],), "d": Decimal("1.5")})
    body = e.body
    body["s"].add(3)
    body["t"][0].append(2)
    assert e["s"] == {1, 2} and e["t"] == ([1],)


@pytest.mark.parametrize("depth", [1, 400, 600, MAX_DEPTH - 1])
def test_every_body_the_codec_stores_reads_back_and_copies(depth: int) -> None:
    """The rule: whatever encode accepts, decode reads back and .body copies, at any depth."""
    codec = Codec()
    stored = codec.decode(codec.encode({"deep": nested(depth)}))
    e = entity(stored)
    copied = e.body
    assert copied is not stored
    assert e == entity(codec.decode(codec.encode({"deep": nested(depth)})))
    assert e != entity(codec.decode(codec.encode({"deep": nested(depth, leaf=2)})))


def test_a_body_deeper_than_the_limit_is_refused_when_encoded() -> None:
    with pytest.raises(EncodeError, match="deeper than msgpack can store"):
        Codec().encode({"deep": nested(MAX_DEPTH + 1)})
    with pytest.raises(EncodeError, match="deeper than pickle can store"):
        Codec(serializer="pickle", allow_pickle=True).encode({"deep": nested(5000)})


def test_entities_differ_by_version_or_body() -> None:
    assert entity({"a": 1}) == entity({"a": 1})
    assert entity({"a": 1}) != entity({"a": 1}, version=2)
    assert entity({"a": [1]}) != entity({"a": [2]})
