"""The `schemaless` command as an operator runs it: indexes, status, metrics."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemaless
from schemaless.testing import run_command

ROOT = Path(__file__).resolve().parents[2]


def test_index_add_list_drop_and_status_json(store: schemaless.Store, db_url: str) -> None:
    added = run_command(
        "index",
        "add",
        "entry_by_user",
        "--kind",
        "entry",
        "--field",
        "user_id:int",
        "--field",
        "published:datetime",
        "--shard-on",
        "user_id",
        url=db_url,
    )
    assert added.returncode == 0, added.stderr
    assert "entry_by_user: ready" in added.stdout
    assert "entry_by_user" in run_command("index", "list", url=db_url).stdout
    store.put_many("entry", [{"user_id": 1}, {"user_id": 2}])
    status = json.loads(run_command("status", "--json", url=db_url).stdout)
    assert status["pending_changes"] == 2
    assert [(i["name"], i["state"], i["rows"]) for i in status["indexes"]] == [
        ("entry_by_user", "ready", 0)
    ]
    assert run_command("indexer", "--burst", url=db_url).returncode == 0
    status = json.loads(run_command("status", "--json", url=db_url).stdout)
    assert status["pending_changes"] == 0 and status["indexes"][0]["rows"] == 2
    assert run_command("index", "drop", "entry_by_user", url=db_url).returncode == 0
    assert json.loads(run_command("status", "--json", url=db_url).stdout)["indexes"] == []


def test_bad_input_gives_an_error_and_exit_status_2(store: schemaless.Store, db_url: str) -> None:
    result = run_command(
        "index", "add", "Bad-Name", "--kind", "entry", "--field", "x:int", url=db_url
    )
    assert result.returncode == 2
    assert "error: invalid index name" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_indexer_serves_prometheus_metrics(
    store: schemaless.Store, db_url: str, cli: Callable[..., Any]
) -> None:
    store.add_index(schemaless.Index("entry_by_n", kind="entry", fields={"n": "int"}))
    store.put_many("entry", [{"n": n} for n in range(10)])
    port = _free_port()
    worker = cli("indexer", f"--metrics-port={port}", url=db_url)
    worker.wait_for("worker started")
    assert store.wait_for_indexes(timeout=30)
    deadline, text = time.monotonic() + 10, ""
    while "schemaless_changes_applied_total 10.0" not in text and time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    for name in (
        "schemaless_changes_pending 0.0",
        "schemaless_lag_seconds",
        "schemaless_batch_seconds",
        "schemaless_changes_applied_total 10.0",
    ):
        assert name in text
