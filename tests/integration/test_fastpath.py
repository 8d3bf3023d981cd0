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
