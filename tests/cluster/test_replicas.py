"""Replica reads on real MariaDB replication: a primary with a binary log and its replica.

What a user sees (schemaless/replica.py): reads asked with ``consistency="replica"`` are served
by the replica; a store that wrote reads its own writes there (it waits for its GTID, within
the timeout, else reads the primary); a store that never wrote may read stale; a dead, silent or
stopped replica sends reads to the primary, and only a primary down too makes them fail.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import schemaless
from schemaless import ConfigurationError, Index, InvalidQuery, ShardUnavailable
from schemaless.replica import ReplicaStats
from schemaless.testing import Memcached, MySQLServer

TIMEOUT = 1.0
KIND = "note"
BY_USER = Index("note_by_user", kind=KIND, fields={"user_id": "int", "n": "int"})

Urls = tuple[str, str]
Pair = tuple[MySQLServer, MySQLServer]  # the primary, its replica


def _connect(urls: Urls, **options: Any) -> schemaless.Store:
    """A store on the primary whose shard s0 has the replica."""
    primary, replica = urls
    return schemaless.connect(primary, replicas={"s0": [replica]}, timeout=TIMEOUT, **options)


def _stats(store: schemaless.Store) -> ReplicaStats:
    replicas = store.shards[0].replicas
    assert replicas is not None
    return replicas.stats


@pytest.fixture
def writer(replicated_database: Urls) -> Iterator[schemaless.Store]:
    """The store that writes (and so reads its own writes on the replica)."""
    store = _connect(replicated_database, indexing="sync")
    store.migrate()
    store.add_index(BY_USER)
    yield store
    store.close()


@pytest.fixture
def reader(replicated_database: Urls, writer: schemaless.Store) -> Iterator[schemaless.Store]:
    """Another store on the same servers that never writes."""
    store = _connect(replicated_database)
    yield store
    store.close()


def test_the_replica_serves_what_the_primary_wrote_once_replicated(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
) -> None:
    made = writer.put_many(KIND, [{"user_id": 1, "n": n} for n in range(20)])
    replicated[1].catch_up()

    found = reader.get_many([e.id for e in made], consistency="replica")
    one = reader.get(made[0].id, consistency="replica")

    assert {i: e.body for i, e in found.items()} == {e.id: e.body for e in made}
    assert one == made[0]
    assert _stats(reader) == ReplicaStats(reads=2)  # served there, with no wait


def test_a_store_reads_its_own_writes_on_the_replica_every_time(
    writer: schemaless.Store, replicated_database: Urls
) -> None:
    writer = _connect(replicated_database)  # async indexing: new entities take the fast path
    entity = writer.put(KIND, {"n": 0})
    for n in range(1, 151):
        entity = writer.put(KIND, {"n": n}, id=entity.id)  # an update, in a transaction
        assert writer.get(entity.id, consistency="replica").version == entity.version
        fresh = writer.put(KIND, {"n": n})  # a new entity, on the fast path
        assert writer.get_many([fresh.id], consistency="replica") == {fresh.id: fresh}

    stats = _stats(writer)
    assert stats.fallbacks == 0 and stats.reads + stats.lagging == 300
    assert stats.reads >= 100  # served by the replica, after waiting for the store's writes
    writer.close()


def test_a_stopped_replica_sends_read_your_writes_reads_to_the_primary_within_the_timeout(
    writer: schemaless.Store, replicated: Pair
) -> None:
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replicated[1].stop_replication()
    entity = writer.put(KIND, {"user_id": 1, "n": 2}, id=entity.id)

    started = time.monotonic()
    assert writer.get(entity.id, consistency="replica").version == 2
    assert time.monotonic() - started < TIMEOUT + 0.25  # the wait is 0.75 s of it
    started = time.monotonic()
    assert writer.get(entity.id, consistency="replica").version == 2
    assert time.monotonic() - started < 0.3  # the lagging replica is not waited on again
    assert _stats(writer).lagging == 2


def test_a_store_that_never_wrote_may_read_stale_from_a_stopped_replica(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
) -> None:
    replica = replicated[1]
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replica.catch_up()
    replica.stop_replication()
    writer.put(KIND, {"user_id": 1, "n": 2}, id=entity.id)

    assert reader.get(entity.id, consistency="replica").version == 1  # stale, as documented
    assert reader.get(entity.id).version == 2
    replica.start_replication()
    replica.catch_up()
    assert reader.get(entity.id, consistency="replica").version == 2


def test_a_killed_replica_sends_reads_to_the_primary_until_it_returns(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = replicated[1]
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replica.catch_up()
    assert reader.get(entity.id, consistency="replica") == entity  # keeps a connection there
    replica.kill()

    with caplog.at_level(logging.WARNING, logger="schemaless.replica"):
        for store in (reader, writer):
            started = time.monotonic()
            assert store.get(entity.id, consistency="replica") == entity
            assert time.monotonic() - started < TIMEOUT + 1
            started = time.monotonic()
            assert store.get(entity.id, consistency="replica") == entity
            assert time.monotonic() - started < 0.3  # skipped at once now
            assert _stats(store).fallbacks == 2
    assert len([r for r in caplog.records if "s0.replica0 failed" in r.message]) == 2

    replica.start()
    replica.catch_up()
    time.sleep(TIMEOUT)  # then the replica is tried again
    assert reader.get(entity.id, consistency="replica") == entity
    assert _stats(reader).reads == 2


def test_a_silent_replica_costs_one_timeout_then_none(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
) -> None:
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replicated[1].catch_up()
    assert reader.get(entity.id, consistency="replica") == entity
    replicated[1].pause()

    for store in (reader, writer):  # the writer waits for its GTID there: no answer either
        started = time.monotonic()
        assert store.get(entity.id, consistency="replica") == entity
        assert time.monotonic() - started < TIMEOUT + 1
        started = time.monotonic()
        assert store.get_many([entity.id], consistency="replica") == {entity.id: entity}
        assert time.monotonic() - started < 0.3  # skipped at once now
        assert _stats(store).fallbacks == 2


def test_reads_fail_only_when_the_primary_is_down_too(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
) -> None:
    primary, replica = replicated
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replica.catch_up()
    assert reader.get(entity.id) == entity  # the bucket map is read, from the primary
    primary.pause()

    # The replica alone answers both: it holds every write of the store that wrote.
    assert writer.get(entity.id, consistency="replica") == entity
    assert reader.get(entity.id, consistency="replica") == entity
    replica.pause()
    started = time.monotonic()
    with pytest.raises(ShardUnavailable) as caught:
        reader.get(entity.id, consistency="replica")
    assert caught.value.shard == "s0"  # the primary's error: the replica's was handled
    assert time.monotonic() - started < 2 * (TIMEOUT + 1)


def test_queries_read_the_replica(
    writer: schemaless.Store,
    reader: schemaless.Store,
    replicated: Pair,
) -> None:
    replica = replicated[1]
    writer.put_many(KIND, [{"user_id": 7, "n": n} for n in range(10)])
    replica.catch_up()
    replica.stop_replication()
    writer.put(KIND, {"user_id": 7, "n": 10})  # with its index row, in one transaction

    def top(store: schemaless.Store, consistency: str) -> list[int]:
        query = store.query(KIND, consistency=consistency).filter(user_id=7).order_by("-n")
        return [e["n"] for e in query[:3]]

    assert top(reader, "replica") == [9, 8, 7]  # the replica's, stale
    assert top(reader, "primary") == [10, 9, 8]
    assert top(writer, "replica") == [10, 9, 8]  # its own write: read on the primary
    assert reader.query(KIND, consistency="replica").filter(user_id=7).count() == 10
    assert len(reader.query(KIND, consistency="replica")) == 10  # the listing of the kind
    assert _stats(reader).reads == 3
    assert _stats(writer).lagging >= 1


def test_replica_reads_never_fill_the_cache(
    writer: schemaless.Store,
    replicated_database: Urls,
    replicated: Pair,
) -> None:
    entity = writer.put(KIND, {"user_id": 1, "n": 1})
    replicated[1].catch_up()
    try:
        cache = Memcached().start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    store = _connect(replicated_database, cache=cache.url)
    try:
        assert store.cache is not None
        assert store.get(entity.id, consistency="replica") == entity
        assert store.cache.stats.fills == 0
        assert store.get(entity.id) == entity  # a primary read fills it
        assert store.cache.stats.fills == 1
        assert store.get(entity.id, consistency="replica") == entity  # a hit serves it
        assert store.cache.stats.hits == 1 and _stats(store).reads == 1
    finally:
        store.close()
        cache.stop()


def test_consistency_is_primary_or_replica_before_any_sql() -> None:
    store = schemaless.connect("mysql+mysqldb://root@127.0.0.1:9/nowhere", timeout=TIMEOUT)
    some_id = uuid.uuid4()
    with pytest.raises(InvalidQuery, match="consistency"):
        store.get(some_id, consistency="nearest")
    with pytest.raises(InvalidQuery, match="consistency"):
        store.get_many([some_id], consistency="Replica")
    with pytest.raises(InvalidQuery, match="consistency"):
        store.query(KIND, consistency=None)  # type: ignore[arg-type]
    store.close()


def test_a_shard_without_replicas_serves_replica_reads_from_its_primary(
    sqlite_files: list[str],
) -> None:
    store = schemaless.connect(sqlite_files[0])
    store.migrate()
    entity = store.put(KIND, {"n": 1})
    assert store.get(entity.id, consistency="replica") == entity
    store.close()


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        ({"s9": ["mysql+mysqldb://root@127.0.0.1:9/x"]}, "no such shard"),
        ({"s0": [5]}, "must be URLs"),
        (["mysql+mysqldb://root@127.0.0.1:9/x"], "must be a dict"),
        ({"s0": ["sqlite:///replica.db"]}, "need MySQL or MariaDB"),
    ],
)
def test_replicas_must_be_mysql_urls_of_named_shards(replicas: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        schemaless.connect(
            {"s0": "mysql+mysqldb://root@127.0.0.1:9/x"},
            replicas=replicas,  # type: ignore[arg-type]
        )
