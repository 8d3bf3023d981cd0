"""The shard map routes ids and shard_on values stably and evenly."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from schemaless import ConfigurationError
from schemaless.bucket_map import BucketMap
from schemaless.connection import shard_urls
from schemaless.shard import Shard
from schemaless.shards import ShardMap


def _computed(count: int) -> ShardMap:
    """A map of ``count`` shards routing by the first map a migrate would store."""
    names = [f"s{n}" for n in range(count)]
    maps = {"default": BucketMap.initial("default", 0, names)}
    return ShardMap([Shard(name, sa.create_engine("sqlite://")) for name in names], maps=maps)


@pytest.fixture
def shards() -> ShardMap:
    return _computed(3)


def test_ids_spread_evenly(shards: ShardMap) -> None:
    counts = [0, 0, 0]
    for _ in range(3000):
        counts[shards.shard_for_id(uuid.uuid4().bytes)] += 1
    assert min(counts) > 800


def test_equal_index_values_route_to_the_same_shard(shards: ShardMap) -> None:
    assert shards.shard_for_value(7) == shards.shard_for_value(7.0)
    assert len({shards.shard_for_value(n) for n in range(50)}) == 3


def test_routing_is_stable_across_maps() -> None:
    a, b = _computed(2), _computed(2)
    assert [a.shard_for_value(f"user{n}") for n in range(20)] == [
        b.shard_for_value(f"user{n}") for n in range(20)
    ]


def test_no_shards_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        ShardMap([])


def test_shard_urls_come_from_the_argument_the_environment_or_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCHEMALESS_URL", raising=False)
    assert shard_urls() == {"s0": "sqlite:///schemaless.db"}
    monkeypatch.setenv("SCHEMALESS_URL", "sqlite:///a.db, sqlite:///b.db")
    assert shard_urls() == {"s0": "sqlite:///a.db", "s1": "sqlite:///b.db"}
    assert shard_urls(["sqlite:///c.db"]) == {"s0": "sqlite:///c.db"}


def test_shards_may_be_named_in_a_dict_or_as_name_equals_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEMALESS_URL", "east=sqlite:///a.db,west=sqlite:///b.db?x=1")
    assert shard_urls() == {"east": "sqlite:///a.db", "west": "sqlite:///b.db?x=1"}
    assert shard_urls({"h0": "sqlite:///h.db"}) == {"h0": "sqlite:///h.db"}
    with pytest.raises(ConfigurationError, match="differ"):
        shard_urls("a=sqlite:///a.db,a=sqlite:///b.db")
    with pytest.raises(ConfigurationError, match="strings"):
        shard_urls([7])  # type: ignore[list-item]
