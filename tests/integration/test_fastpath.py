"""The MySQL fast path of get / put: kept connections that die are replaced, none stay open."""

from __future__ import annotations

import time
from collections.abc import Iterator

import MySQLdb
import pytest
from sqlalchemy.engine import make_url

import schemaless
from schemaless import fastpath
from schemaless.testing import mysql_connection


@pytest.fixture
def db_url(mysql_url: str) -> str:
    """The fast path is MySQL's alone: the root ``store`` fixture runs on MySQL only here."""
    return mysql_url


@pytest.fixture
def admin(mysql_url: str) -> Iterator[tuple[MySQLdb.Connection, str]]:
    """A connection of our own to the server, and the name of the store's database."""
    connection = mysql_connection(mysql_url, autocommit=True)
    yield connection, str(make_url(mysql_url).database)
    connection.close()


def _sessions(admin: tuple[MySQLdb.Connection, str]) -> list[int]:
    connection, database = admin
    cursor = connection.cursor()
    cursor.execute(
        "SELECT id FROM information_schema.processlist WHERE db = %s AND id != CONNECTION_ID()",
        (database,),
    )
    return [row[0] for row in cursor.fetchall()]


def test_connections_the_server_killed_are_replaced(store: schemaless.Store, admin: tuple) -> None:
    e = store.put("entry", {"n": 1})
    assert store.get(e.id)["n"] == 1
    for session in _sessions(admin):
        admin[0].cursor().execute(f"KILL CONNECTION {int(session)}")
    assert store.get(e.id)["n"] == 1
    assert store.put("entry", {"n": 2}).version == 1
    assert set(store.get_many([e.id])) == {e.id}


def test_a_read_leaves_no_lock_behind(store: schemaless.Store, admin: tuple) -> None:
    e = store.put("entry", {"n": 1})
    store.get(e.id)
    cursor = admin[0].cursor()
    cursor.execute("SET SESSION lock_wait_timeout = 2")
    cursor.execute(f"LOCK TABLES `{admin[1]}`.entities WRITE")  # waits on any open transaction
    cursor.execute("UNLOCK TABLES")


def test_close_leaves_no_connection_open(store: schemaless.Store, admin: tuple) -> None:
    e = store.put("entry", {"n": 1})
    store.get_many([e.id])
    assert _sessions(admin)
    store.close()
    deadline = time.monotonic() + 5
    while _sessions(admin) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(admin) == []
    assert store.get(e.id)["n"] == 1  # a closed store connects again when used


def test_a_small_pool_never_waits_for_kept_connections(mysql_url: str) -> None:
    store = schemaless.connect(mysql_url, pool_size=2, max_overflow=0, pool_timeout=3)
    store.migrate()
    e = store.put("entry", {"n": 1})
    with store.shards.engines[0].connect() as held:  # one of the two, held by the caller
        held.exec_driver_sql("SELECT 1")
        assert store.get(e.id)["n"] == 1
        assert store.put("entry", {"n": 2}).version == 1
        assert store.get(e.id)["n"] == 1
    assert store.delete(e.id) is True
    store.close()


def test_kept_connections_go_back_to_the_pool_in_time(
    store: schemaless.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastpath, "KEEP_SECONDS", 0.0)
    e = store.put("entry", {"n": 1})
    assert store.get(e.id)["n"] == 1
    assert store.shards.engines[0].pool.checkedout() == 0  # type: ignore[attr-defined]


def test_put_many_stores_every_byte_whether_written_in_or_escaped(
    store: schemaless.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    awkward = [bytes(range(256)), b"'\\\"\x00\x1a\r\n%s{0}", "é ☃ \U0001f600".encode()]
    bodies = [{"raw": raw, "text": raw.decode("latin-1"), "n": n} for n, raw in enumerate(awkward)]
    written_in = store.put_many("blob", bodies)
    monkeypatch.setattr(fastpath.inline, "LIMIT", 0)  # every batch escaped by the driver
    escaped = store.put_many("blob", bodies)
    for made in (written_in, escaped):
        assert [store.get(e.id).body for e in made] == bodies
    with store.shards[0].engine.connect() as conn:
        query = "SELECT kind, version, body FROM entities ORDER BY updated, body"
        stored = [tuple(r) for r in conn.exec_driver_sql(query)]
    assert stored[:3] == stored[3:]


def test_a_urls_init_command_runs_and_the_session_stays_in_utc(mysql_url: str) -> None:
    mysql_url += "&" if "?" in mysql_url else "?"
    store = schemaless.connect(
        f"{mysql_url}init_command=SET+time_zone%3D%27%2B05%3A00%27%2C+%40probe%3D7"
    )
    try:
        with store.shards[0].engine.connect() as conn:
            zone, probe = conn.exec_driver_sql("SELECT @@time_zone, @probe").one()
        assert (zone, probe) == ("+00:00", 7)
    finally:
        store.close()
    failing = schemaless.connect(f"{mysql_url}init_command=SET+%40%40session.no_such_variable%3D1")
    try:
        with pytest.raises(schemaless.SchemalessError, match="no_such_variable"):
            failing.migrate()
    finally:
        failing.close()
