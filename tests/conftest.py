"""Fixtures shared by every test: fresh, empty databases on SQLite and on a real MySQL server.

The MySQL server is the one named by `SCHEMALESS_TEST_MYSQL_URL` (fixtures create and drop
their own databases on it), else a private `mariadbd` started once per session by
`schemaless.testing.MySQLServer`. Where no server can be started the MySQL tests are skipped,
except under CI, where they must never be skipped silently.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import schemaless
from schemaless.testing import MySQLServer, create_database, drop_database


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rounds",
        type=int,
        default=1,
        help="multiply the rounds of the fault tests that take it, for longer runs (default 1)",
    )


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    """The URL of a MySQL-family server (no database named), for the whole session."""
    url = os.environ.get("SCHEMALESS_TEST_MYSQL_URL")
    if url:
        yield url
        return
    server = MySQLServer()
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a MySQL server, and CI must not skip: {exc}")
        pytest.skip(f"cannot start a MySQL server: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """The URL of a fresh, empty MySQL database, dropped after the test."""
    name = f"t_{secrets.token_hex(8)}"
    url = create_database(mysql_server, name)
    try:
        yield url
    finally:
        drop_database(mysql_server, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'schemaless.db'}"


@pytest.fixture(params=["sqlite", "mysql"], ids=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty database, once per backend."""
    # Looked up by name, so the MySQL server starts only when a MySQL test runs.
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs MySQL, so that `-m "not mysql"` runs the SQLite half."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec else None
        if fixtures & {"mysql_server", "mysql_url"} or backend == "mysql":
            item.add_marker(pytest.mark.mysql)


@pytest.fixture
def store(db_url: str) -> Iterator[schemaless.Store]:
    """A migrated, empty store, once on SQLite and once on MySQL."""
    store = schemaless.connect(db_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def sync_store(db_url: str) -> Iterator[schemaless.Store]:
    """A migrated store that writes index rows in the write's own transaction."""
    store = schemaless.connect(db_url, indexing="sync")
    store.migrate()
    yield store
    store.close()


REDIS_URL = "redis://127.0.0.1:6379/0"  # the machine's Redis service


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the machine's Redis; its keys deleted afterwards.
    No Redis skips the test, except under CI, where it fails."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis at {REDIS_URL}: {exc}, and CI must not skip")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"t{secrets.token_hex(6)}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
