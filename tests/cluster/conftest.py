"""Several private MariaDB servers on loopback, for the tests of a store that spans servers.

Two servers are started once per session (a few seconds each) and shared; each test gets fresh
databases on them, dropped after it. A test that stops a server (SIGSTOP) resumes it before it
ends, so the next test finds both answering. Under CI the servers must start; elsewhere the
tests are skipped when no server binary is installed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemaless.testing import MySQLServer, create_database, drop_database


@pytest.fixture(scope="session")
def servers() -> Iterator[list[MySQLServer]]:
    """Two private servers, started once."""
    started: list[MySQLServer] = []
    try:
        for _ in range(2):
            started.append(MySQLServer().start())
    except RuntimeError as exc:
        for server in started:
            server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"cannot start MySQL servers, and CI must not skip: {exc}")
        pytest.skip(f"cannot start MySQL servers: {exc}")
    try:
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def databases(servers: list[MySQLServer]) -> Iterator[list[str]]:
    """The URLs of a fresh, empty database on each server, in the servers' order."""
    name = f"c_{secrets.token_hex(6)}"
    urls = [create_database(server.url, name) for server in servers]
    try:
        yield urls
    finally:
        for server in servers:
            server.resume()
            drop_database(server.url, name)


@pytest.fixture
def sqlite_files(tmp_path: Path) -> list[str]:
    """The URLs of three fresh SQLite files."""
    return [f"sqlite:///{tmp_path / f'shard{n}.db'}" for n in range(3)]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the private servers need a MySQL-family server: `-m "not mysql"` skips them."""
    for item in items:
        if "servers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mysql)
