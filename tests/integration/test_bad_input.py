"""Every bad input gets its typed error before any SQL is sent, and the store stays usable."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

import schemaless
from schemaless.tables import entities


def _count(store: schemaless.Store) -> int:
    with store.shards.engines[0].connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(entities)).scalar_one())


@pytest.mark.parametrize(
    ("kind", "body", "error"),
    [
        ("entry", {"s": {1, 2}}, schemaless.EncodeError),
        ("entry", {"o": object()}, schemaless.EncodeError),
        ("entry", {1: "int key"}, schemaless.EncodeError),
        ("entry", {"big": os.urandom(5 * 1024 * 1024)}, schemaless.EntityTooLarge),
        ("Entry", {"n": 1}, schemaless.InvalidName),
        ("1entry", {"n": 1}, schemaless.InvalidName),
        ("entry-x", {"n": 1}, schemaless.InvalidName),
    ],
)
def test_bad_put_raises_and_a_good_put_then_succeeds(
    store: schemaless.Store, kind: str, body: dict, error: type[Exception]
) -> None:
    kept = store.put("entry", {"n": 0})
    with pytest.raises(error):
        store.put(kind, body)
    assert _count(store) == 1
    assert store.put("entry", {"n": 1}).version == 1
    assert store.get(kept.id)["n"] == 0


def test_bad_id_on_put_raises_invalid_id(store: schemaless.Store) -> None:
    with pytest.raises(schemaless.InvalidId):
        store.put("entry", {"n": 1}, id="not-an-id")
    assert store.put("entry", {"n": 1}).version == 1


def test_errors_share_one_root() -> None:
    for name in (
        "NotFound",
        "Conflict",
        "InvalidId",
        "EncodeError",
        "DecodeError",
        "EntityTooLarge",
        "InvalidName",
        "IndexRequired",
        "IndexNotReady",
        "ShardUnavailable",
        "ConfigurationError",
    ):
        assert issubclass(getattr(schemaless, name), schemaless.SchemalessError)
    assert issubclass(schemaless.InvalidId, ValueError)
    assert issubclass(schemaless.NotFound, KeyError)


def test_pickled_blob_without_allow_pickle_raises_decode_error(db_url: str) -> None:
    writer = schemaless.connect(db_url, serializer="pickle", allow_pickle=True)
    writer.migrate()
    e = writer.put("entry", {"x": 1})
    reader = schemaless.connect(db_url)
    with pytest.raises(schemaless.DecodeError):
        reader.get(e.id)
    assert reader.put("entry", {"n": 1}).version == 1
    writer.close()
    reader.close()


def test_entity_limit_follows_max_allowed_packet(mysql_url: str) -> None:
    store = schemaless.connect(mysql_url, max_entity_size=1 << 30)
    store.migrate()
    with store.shards.engines[0].connect() as conn:
        packet = int(conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one())
    with pytest.raises(schemaless.EntityTooLarge):
        store.put("entry", {"b": os.urandom(packet + 10)})
    assert store.put("entry", {"n": 1}).version == 1
    store.close()
