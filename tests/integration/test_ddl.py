"""DDL fails fast with a typed error instead of queueing behind an open reader, and the errors
of a store whose tables were never made name the fix."""

from __future__ import annotations

import time

import pytest

import schemaless
from schemaless import Index
from schemaless.shard import DDL_LOCK_WAIT

INDEX = Index("by_user", kind="entry", fields={"user_id": "int"})


@pytest.fixture
def mysql_store(mysql_url: str) -> schemaless.Store:
    store = schemaless.connect(mysql_url)
    store.migrate()
    return store


def test_drop_index_behind_an_open_reader_fails_fast_naming_it(
    mysql_store: schemaless.Store,
) -> None:
    store = mysql_store
    store.add_index(INDEX)
    store.put("entry", {"user_id": 1})
    with store.shards[0].engine.connect() as reader:
        reader.begin()
        reader.exec_driver_sql("SELECT count(*) FROM index_by_user").scalar()  # holds its MDL
        started = time.monotonic()
        with pytest.raises(schemaless.ShardUnavailable, match="drop_index 'by_user'") as caught:
            store.drop_index("by_user")
        assert time.monotonic() - started < DDL_LOCK_WAIT + 2
        assert isinstance(caught.value, schemaless.ShardBusy)
        assert caught.value.shard == "s0"
        # Writers of entities never waited on it.
        assert store.put("entry", {"user_id": 2}).version == 1
    store.drop_index("by_user")  # once the reader is gone, it goes through
    assert store.indexes() == []


def test_an_unmigrated_store_says_run_migrate(db_url: str) -> None:
    store = schemaless.connect(db_url)
    for call in (
        lambda: store.put("entry", {"a": 1}),
        lambda: store.get("0" * 32),
        lambda: store.indexes(),
        lambda: list(store.query("entry")),
        lambda: store.pending_changes(),
    ):
        with pytest.raises(schemaless.ConfigurationError, match="schemaless migrate"):
            call()
    store.close()


def test_a_missing_driver_or_a_bad_url_is_a_configuration_error() -> None:
    for url in ("nonsense", "mysql+nosuchdriver://root@127.0.0.1/x", "oracle://u@h/x"):
        with pytest.raises(schemaless.ConfigurationError):
            schemaless.connect(url)
    with pytest.raises(schemaless.ConfigurationError, match="timeout"):
        schemaless.connect("sqlite://", timeout=0)
