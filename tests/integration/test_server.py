"""The test servers themselves: a real MySQL-family server, a fresh database per test."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

_seen_databases: set[str] = set()


def test_server_accepts_a_connection_and_reports_its_version(mysql_url: str) -> None:
    engine = sa.create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT VERSION()")).scalar_one()
    finally:
        engine.dispose()
    match = re.match(r"(\d+)\.\d+", version)
    assert match, version
    assert "MariaDB" in version or int(match.group(1)) >= 8, version


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_gets_its_own_empty_database(mysql_url: str, run: str) -> None:
    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT DATABASE()")).scalar_one()
            tables = conn.execute(sa.text("SHOW TABLES")).all()
            conn.execute(sa.text("CREATE TABLE left_behind (id INT PRIMARY KEY)"))
    finally:
        engine.dispose()
    assert tables == []
    assert name not in _seen_databases
    _seen_databases.add(name)
