"""The limits on a body, enforced before any SQL: how deep it nests and how big it is.

Whatever ``put`` accepts, ``get`` reads back and ``.body`` copies. A body whose statement would
pass the server's ``max_allowed_packet`` once mysqlclient has escaped it raises EntityTooLarge
before any SQL, and one exactly at the limit is stored: never a server error in between.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import schemaless
from schemaless.codec import MAX_DEPTH
from schemaless.testing import MySQLServer, mysql_connection

SMALL_PACKET = 4 * 1024 * 1024
ESCAPED = (0, ord("'"), ord('"'), ord("\\"), ord("\n"), ord("\r"), 0x1A)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def test_a_body_nested_to_the_codec_limit_reads_back(store: schemaless.Store) -> None:
    body = {"deep": nested(MAX_DEPTH - 1)}
    stored = store.put("entry", body)
    read = store.get(stored.id)
    assert read == stored  # == itself falls back to a walk where Python's recursion would not do
    # Too deep for Python's own ==: compared as their encodings, which keep key order.
    assert store.codec.encode(read.body) == store.codec.encode(body)
    assert read.body is not read.body


def test_a_body_nested_past_the_limit_is_refused_before_any_sql(store: schemaless.Store) -> None:
    with pytest.raises(schemaless.EncodeError, match="deeper than msgpack can store"):
        store.put("entry", {"deep": nested(MAX_DEPTH)})
    with pytest.raises(schemaless.EncodeError):
        store.put_many("entry", [{"n": 1}, {"deep": nested(MAX_DEPTH + 50)}])
    assert store.pending_changes() == 0 and list(store.query("entry")) == []


# -- max_allowed_packet -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_packet_server() -> Iterator[MySQLServer]:
    """A private server whose max_allowed_packet is 4 MiB (the shared one is never changed)."""
    server = MySQLServer()
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a MySQL server, and CI must not skip: {exc}")
        pytest.skip(f"cannot start a MySQL server: {exc}")
    try:
        admin = mysql_connection(server.url)
        cursor = admin.cursor()
        cursor.execute(f"SET GLOBAL max_allowed_packet = {SMALL_PACKET}")
        cursor.execute("SELECT @@GLOBAL.max_allowed_packet")
        assert cursor.fetchone()[0] == SMALL_PACKET
        admin.close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def small_packet_store(small_packet_server: MySQLServer) -> Iterator[schemaless.Store]:
    name = f"limits_{os.getpid()}"
    small_packet_server.drop_database(name)
    url = small_packet_server.create_database(name)
    # No compression: the blob's bytes are the payload's, so its escaped size can be aimed at.
    store = schemaless.connect(url, compress_threshold=1 << 30)
    store.migrate()
    yield store
    store.close()
    small_packet_server.drop_database(name)


def escaped_size(blob: bytes) -> int:
    return len(blob) + sum(blob.count(bytes([b])) for b in ESCAPED)


def body_escaping_to(store: schemaless.Store, target: int, *, special: int) -> dict[str, bytes]:
    """A body of ``special`` bytes that escape to two and filler, whose blob escapes to
    exactly ``target`` bytes."""
    filler = target - 2 * special
    for _ in range(10):
        payload = bytes(ESCAPED[i % len(ESCAPED)] for i in range(special)) + b"x" * filler
        size = escaped_size(store.codec.encode({"b": payload}))
        if size == target:
            return {"b": payload}
        filler += target - size
    raise AssertionError(f"no body escapes to {target} bytes")


@pytest.mark.parametrize("share", [0.0, 0.001, 0.5, 0.99])
def test_a_body_escaping_to_exactly_the_limit_is_stored(
    small_packet_store: schemaless.Store, share: float
) -> None:
    store = small_packet_store
    limit = store._size_limit()
    assert SMALL_PACKET - 4096 < limit < SMALL_PACKET
    body = body_escaping_to(store, limit, special=int(limit * share / 2))
    stored = store.put("entry", body)
    assert store.get(stored.id)["b"] == body["b"]
    again = store.put("entry", body, id=stored.id)  # the UPDATE carries it as well
    assert store.get(stored.id).version == again.version == 2
    assert len(store.put_many("entry", [body, {"n": 1}])) == 2


@pytest.mark.parametrize("share", [0.0, 0.001, 0.5, 0.99])
def test_a_body_escaping_past_the_limit_is_refused_before_any_sql(
    small_packet_store: schemaless.Store, share: float
) -> None:
    """Its blob alone fits the store's limit; escaped in the statement it is one byte over."""
    store = small_packet_store
    limit = store._size_limit()
    body = body_escaping_to(store, limit + 1, special=int(limit * share / 2))
    assert len(store.codec.encode(body)) <= limit
    first = store.put("entry", {"n": 1})
    with pytest.raises(schemaless.EntityTooLarge, match="escaped"):
        store.put("entry", body)
    with pytest.raises(schemaless.EntityTooLarge):
        store.put("entry", body, id=first.id)
    with pytest.raises(schemaless.EntityTooLarge):
        store.put_many("entry", [{"n": 2}, body])
    assert store.get(first.id).version == 1
    assert store.pending_changes() == 1 and len(list(store.query("entry"))) == 1


def test_a_body_the_server_would_refuse_once_escaped_is_never_sent(
    small_packet_store: schemaless.Store,
) -> None:
    """Half its bytes escape: its blob fits the packet, its statement is a fifth over it."""
    store = small_packet_store
    target = SMALL_PACKET * 6 // 5
    body = body_escaping_to(store, target, special=target // 4)
    assert len(store.codec.encode(body)) < store._size_limit()
    with pytest.raises(schemaless.EntityTooLarge, match="escaped"):
        store.put("entry", body)
    assert store.pending_changes() == 0 and list(store.query("entry")) == []
    assert store.put("entry", {"n": 1}).version == 1
