"""Every statement of a full workload obeys the rules of distributed MySQL engines (DESIGN 6).

The server's general log records what the store, the real daemons (`schemaless indexer`,
`backfill`, `verify --repair`, `cleaner`, each a subprocess) and every other client sent; no
statement may take an advisory lock, lock tables, create a trigger, or carry more than 1000
rows (the tuples of an INSERT, the values of an IN list), and every table the workload made
has a primary key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import schemaless
from schemaless import Index
from schemaless.testing import MySQLServer, mysql_connection, run_command
from tests.cluster.engine_rules import GeneralLog, tables, tables_without_primary_key, violations

ROOT = Path(__file__).resolve().parents[2]
MANY = 2500  # put_many, get_many: well over a batch of 1000
TAGS = ("red", "green", "blue")

BY_USER = Index(
    "entry_by_user",
    kind="entry",
    fields={"user_id": "int", "published": "datetime"},
    shard_on="user_id",
)
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})  # 3 rows an entity


@pytest.fixture(scope="module")
def server() -> Iterator[MySQLServer]:
    """A server of this module's own: the general log records every client's statements."""
    private = MySQLServer()
    try:
        private.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a MySQL server, and CI must not skip: {exc}")
        pytest.skip(f"cannot start a MySQL server: {exc}")
    yield private
    private.stop()


def _bodies(count: int, start: int = 0) -> list[dict[str, object]]:
    t0 = datetime(2024, 1, 1)
    return [
        {"user_id": n % 10, "published": t0 + timedelta(minutes=n), "tags": list(TAGS), "n": n}
        for n in range(start, start + count)
    ]


def _cleaner_for(url: str, seconds: float) -> None:
    """Run `schemaless cleaner` for a while, then stop it as an operator would (SIGTERM)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "schemaless", "cleaner", "--rate", "5000", f"--url={url}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()


def _break_some_index_rows(url: str) -> None:
    connection = mysql_connection(url, autocommit=True)
    try:
        connection.cursor().execute("DELETE FROM index_entry_by_user ORDER BY entity_id LIMIT 5")
    finally:
        connection.close()


def _workload(url: str) -> None:
    """Everything a store does in its life, through the public API and the real commands."""
    store = schemaless.connect(url)
    store.migrate()
    store.add_index(BY_USER)  # ready at once: the kind is empty
    one = store.put("entry", _bodies(1)[0])
    many = store.put_many("entry", _bodies(MANY, start=1))
    assert len(store.get_many([e.id for e in many])) == MANY
    store.put("entry", {**one.body, "title": "updated"}, id=one.id, expect_version=1)
    for entity in many[:20]:
        store.put("entry", {**entity.body, "user_id": 99}, id=entity.id)
    for entity in many[20:40]:
        assert store.delete(entity.id)
    assert run_command("indexer", "--burst", "--batch-size", "1000", url=url).returncode == 0
    assert store.add_index(BY_TAG) == "building"
    done = run_command("backfill", BY_TAG.name, url=url)
    assert done.returncode == 0, done.stderr
    store.put_many("entry", _bodies(MANY, start=MANY + 1))
    done = run_command("indexer", "--burst", "--batch-size", "1000", url=url)
    assert done.returncode == 0, done.stderr

    assert len(store.query("entry").filter(user_id=3).order_by("-published")[:10]) == 10
    assert len(list(store.query("entry").filter(user_id=3))) > 400
    assert store.query("entry").filter(tags="red").count() == 2 * MANY + 1 - 20
    assert len(list(store.query("entry").filter(user_id__in=list(range(10))))) > 4000
    assert len(list(store.query("entry"))) == 2 * MANY + 1 - 20  # the unindexed listing
    assert len(list(store.query("entry").scan().filter(n__lt=100))) == 80

    _break_some_index_rows(url)
    assert run_command("verify", url=url).returncode == 1
    done = run_command("verify", "--repair", url=url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_command("verify", url=url).returncode == 0
    _cleaner_for(url, 3.0)
    store.drop_index(BY_TAG.name)
    store.close()


def test_a_full_workload_obeys_the_distributed_engine_rules(server: MySQLServer) -> None:
    url = server.create_database("rules")
    with GeneralLog(server.url) as log:
        _workload(url)
    statements = [s for s in log.statements if "general_log" not in s]
    assert len(statements) > 100, "the general log recorded too little to judge"
    assert any("index_entry_by_tag" in s for s in statements)  # the daemons were recorded
    assert violations(statements) == []


def test_every_table_has_a_primary_key(server: MySQLServer) -> None:
    url = server.create_database("keys")
    store = schemaless.connect(url)
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    store.close()
    assert {"entities", "entity_changes", "index_entry_by_user", "index_entry_by_tag"} <= set(
        tables(url)
    )
    assert tables_without_primary_key(url) == []
