"""The bucket map is data: stored by migrate, read and checked at first use, deciding routing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import schemaless
from schemaless import ConfigurationError
from schemaless.bucket_map import BUCKETS
from schemaless.tables import entities
from schemaless.testing import MySQLServer

ROOT = Path(__file__).resolve().parents[2]


def _holders(store: schemaless.Store, entity_id: uuid.UUID) -> list[str]:
    """The names of the shards whose entities table holds that id, read raw."""
    found = []
    for shard in store.shards:
        with shard.engine.connect() as conn:
            stmt = sa.select(entities.c.id).where(entities.c.id == entity_id.bytes)
            if conn.execute(stmt).first() is not None:
                found.append(shard.name)
    return found


def test_migrate_stores_the_contiguous_map_that_earlier_versions_computed(
    sqlite_files: list[str],
) -> None:
    store = schemaless.connect(sqlite_files)
    store.migrate()
    stored = store.shard_map()
    assert stored.version == 1 and stored.group == "default"
    assert list(stored.owners) == [f"s{b * 3 // BUCKETS}" for b in range(BUCKETS)]
    for e in store.put_many("entry", [{"n": n} for n in range(60)]):
        bucket = int.from_bytes(e.id.bytes[:2], "big") % BUCKETS
        assert _holders(store, e.id) == [f"s{bucket * 3 // BUCKETS}"]
    store.close()


def test_named_shards_listed_in_another_order_route_identically(
    databases: list[str],
) -> None:
    store = schemaless.connect({"s0": databases[0], "s1": databases[1]})
    store.migrate()
    # Another process, given the same shards in the other order, writes by the stored map.
    script = "import schemaless\nfor n in range(40): print(schemaless.connect().put('e', {}).id)"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMALESS_URL": f"s1={databases[1]},s0={databases[0]}",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    written = [uuid.UUID(line) for line in out.split()]
    assert len(written) == 40
    for entity_id in written:
        assert _holders(store, entity_id) == [store.shards.for_id(entity_id.bytes).name]
    assert {store.shards.for_id(i.bytes).name for i in written} == {"s0", "s1"}
    store.close()


def test_a_list_in_another_order_is_refused_not_misrouted(databases: list[str]) -> None:
    schemaless.connect(databases).migrate()
    swapped = schemaless.connect(list(reversed(databases)))  # connect itself stays offline
    with pytest.raises(ConfigurationError, match="NAME=URL"):
        swapped.put("entry", {"n": 1})
    swapped.close()


def test_maps_of_two_stores_listed_together_raise(sqlite_files: list[str]) -> None:
    a, b, c = sqlite_files
    schemaless.connect({"a": a, "b": b}).migrate()
    schemaless.connect({"c": c}).migrate()
    mixed = schemaless.connect({"a": a, "b": b, "c": c})
    with pytest.raises(ConfigurationError, match="different bucket maps"):
        mixed.get(uuid.uuid4())
    with pytest.raises(ConfigurationError, match="different bucket maps"):
        mixed.migrate()


def test_a_shard_the_map_names_must_be_listed(sqlite_files: list[str]) -> None:
    a, b, _ = sqlite_files
    schemaless.connect({"a": a, "b": b}).migrate()
    partial = schemaless.connect({"a": a})
    with pytest.raises(ConfigurationError, match="names shard"):
        partial.get(uuid.uuid4())
    with pytest.raises(ConfigurationError, match="names shard"):
        partial.query("entry").count()


def test_a_listed_shard_without_buckets_is_fine(sqlite_files: list[str]) -> None:
    a, b, c = sqlite_files
    first = schemaless.connect({"a": a, "b": b})
    first.migrate()
    made = first.put_many("entry", [{"n": n} for n in range(50)])
    grown = schemaless.connect({"a": a, "b": b, "c": c})
    grown.migrate()  # c gets a copy of the map, and no buckets
    assert grown.shard_map() == first.shard_map()
    assert set(grown.get_many(e.id for e in made)) == {e.id for e in made}
    later = grown.put_many("entry", [{"n": n} for n in range(50)])
    assert all(_holders(grown, e.id) != ["c"] for e in later)
    assert grown.query("entry").count() == 100
    alone = schemaless.connect({"c": c})  # c holds the map: it knows a and b are missing
    with pytest.raises(ConfigurationError, match="names shard"):
        alone.get(made[0].id)


def test_the_map_is_read_from_any_healthy_shard(
    servers: list[MySQLServer], databases: list[str]
) -> None:
    store = schemaless.connect(databases)
    store.migrate()
    made = store.put_many("entry", [{"n": n} for n in range(20)])
    on_s0 = next(e for e in made if store.shards.for_id(e.id.bytes).name == "s0")
    servers[1].pause()
    try:
        fresh = schemaless.connect(databases, timeout=1.0)
        assert fresh.get(on_s0.id)["n"] == on_s0["n"]
        assert fresh.shard_map() == store.shard_map()
    finally:
        servers[1].resume()
    fresh.close()
    store.close()
