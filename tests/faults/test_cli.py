"""The `schemaless` command as an operator runs it: indexes, status, metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

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
        "--descending",
        "published",
        url=db_url,
    )
    assert added.returncode == 0, added.stderr
    assert "entry_by_user: ready" in added.stdout
    listed = run_command("index", "list", url=db_url).stdout
    assert "entry_by_user" in listed and "descending=['published']" in listed
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
    assert (
        result.stderr
        == "schemaless: invalid index name 'Bad-Name': must match [a-z][a-z0-9_]{0,47}\n"
    )


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


# -- garbage in: one line on stderr, a non-zero exit, no traceback, no hang --------------------

EVERY_COMMAND = [
    ["migrate"],
    ["status"],
    ["status", "--json"],
    ["indexer", "--burst"],
    ["indexer"],  # a daemon: must not wait forever for a database that is not there
    ["indexer", "--workers", "2"],
    ["indexer", "--retry-set-aside"],
    ["backfill", "entry_by_n"],
    ["verify"],
    ["verify", "entry_by_n", "--repair"],
    ["cleaner"],
    ["index", "add", "entry_by_n", "--kind", "entry", "--field", "n:int"],
    ["index", "list"],
    ["index", "drop", "entry_by_n"],
]


class Outcome:
    """How one command ended: its exit status and its output, or that it hung."""

    def __init__(self, argv: list[str], code: int | None, out: str, err: str) -> None:
        self.argv, self.code, self.out, self.err = argv, code, out, err

    def __repr__(self) -> str:
        return f"{' '.join(self.argv)} -> exit {self.code}, stderr {self.err!r}"


def run_all(argvs: list[list[str]], timeout: float = 30.0, **env: str) -> list[Outcome]:
    """Run ``python -m schemaless ARGV`` for every argv at once (they mostly wait on sockets).

    Each runs in a process group of its own, killed whole at the end: a command that hangs, or
    the children of ``--workers``, must not outlive the test (nor hold its pipes open).
    """
    environ = {k: v for k, v in os.environ.items() if k != "SCHEMALESS_URL"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    command = [sys.executable, "-m", "schemaless"]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    options.update(env=environ, cwd=ROOT, start_new_session=True)
    started = [(argv, subprocess.Popen([*command, *argv], **options)) for argv in argvs]
    deadline = time.monotonic() + timeout
    outcomes = []
    try:
        for argv, process in started:
            try:
                out, err = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
                outcomes.append(Outcome(argv, process.returncode, out, err))
            except subprocess.TimeoutExpired:
                _kill_group(process)
                out, err = process.communicate()
                outcomes.append(Outcome(argv, None, out, err))  # hung
    finally:
        for _, process in started:
            _kill_group(process)
            process.wait()
    return outcomes


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def assert_one_line_errors(outcomes: list[Outcome], expected: str, code: int = 2) -> None:
    """Every command exited with ``code``, saying one line on stderr that contains ``expected``."""
    wrong = [
        o
        for o in outcomes
        if o.code != code
        or "Traceback" in o.err
        or len(o.err.strip().splitlines()) != 1
        or expected.lower() not in o.err.lower()
    ]
    assert not wrong, "\n".join(map(repr, wrong))


def assert_each_says(outcomes: list[Outcome], words: list[str]) -> None:
    """The stderr of each command names what was wrong with it."""
    wrong = [o for o, word in zip(outcomes, words, strict=True) if word not in o.err]
    assert not wrong, "\n".join(map(repr, wrong))


def _closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (a server that is down)."""
    return _free_port()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback TCP listener that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes handshakes; nobody ever reads or writes
        yield int(listener.getsockname()[1])


def with_url(commands: list[list[str]], url: str) -> list[list[str]]:
    return [[*argv, f"--url={url}"] for argv in commands]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "cannot use"),
        ("mysql+mysqldb//root@127.0.0.1/app", "cannot use"),
        ("postgresql+psycopg://app@127.0.0.1/app", "postgresql"),
        ("mysql+pymysql://root@127.0.0.1/app", "pymysql"),
        ("mysql+nosuchdriver://root@127.0.0.1/app", "nosuchdriver"),
        ("sqlite:////no/such/directory/app.db", "unavailable"),
        ("", "no database URL"),
    ],
    ids=["garbage", "no-scheme", "postgres", "missing-driver", "unknown-driver", "no-dir", "empty"],
)
def test_a_bad_url_is_one_line_from_every_command(url: str, expected: str) -> None:
    assert_one_line_errors(run_all(with_url(EVERY_COMMAND, url)), expected)


def test_a_bad_schemaless_url_is_one_line_too() -> None:
    outcomes = run_all(EVERY_COMMAND, SCHEMALESS_URL="mysql+pymysql://root@127.0.0.1/app")
    assert_one_line_errors(outcomes, "pymysql")


def test_a_server_that_is_down_is_one_line_from_every_command() -> None:
    url = f"mysql+mysqldb://root@127.0.0.1:{_closed_port()}/app"
    assert_one_line_errors(run_all(with_url(EVERY_COMMAND, url)), "unavailable")


def test_a_silent_server_is_one_line_within_the_timeout(silent_server: int) -> None:
    url = f"mysql+mysqldb://root@127.0.0.1:{silent_server}/app"
    started = time.monotonic()
    outcomes = run_all(with_url(EVERY_COMMAND, url), timeout=30.0)
    assert_one_line_errors(outcomes, "unavailable")
    assert time.monotonic() - started < 20.0


def test_an_unknown_database_is_one_line_from_every_command(mysql_server: str) -> None:
    url = make_url(mysql_server).set(database="no_such_database_here")
    rendered = url.render_as_string(hide_password=False)
    assert_one_line_errors(run_all(with_url(EVERY_COMMAND, rendered)), "unknown database")


def test_an_unmigrated_store_is_one_line_and_left_untouched(db_url: str) -> None:
    commands = [argv for argv in EVERY_COMMAND if argv != ["migrate"]]
    assert_one_line_errors(run_all(with_url(commands, db_url)), "schemaless migrate")
    engine = sa.create_engine(db_url)
    try:
        assert sa.inspect(engine).get_table_names() == []  # no command did half its work
    finally:
        engine.dispose()
    migrated = run_all([["migrate", f"--url={db_url}"]])[0]
    assert migrated.code == 0, migrated


BAD_ARGUMENTS = [
    (["indexer", "--batch-size", "0", "--burst"], "--batch-size"),
    (["indexer", "--batch-size", "-1"], "--batch-size"),
    (["indexer", "--batch-size", "1001"], "--batch-size"),
    (["indexer", "--batch-size", "ten"], "--batch-size"),
    (["indexer", "--workers", "0"], "--workers"),
    (["indexer", "--workers", "-3"], "--workers"),
    (["indexer", "--workers", "100000"], "--workers"),
    (["indexer", "--max-batches", "0"], "--max-batches"),
    (["indexer", "--metrics-port", "0"], "--metrics-port"),
    (["indexer", "--metrics-port", "-1"], "--metrics-port"),
    (["indexer", "--metrics-port", "70000"], "--metrics-port"),
    (["indexer", "--metrics-port", "65535", "--workers", "2"], "--metrics-port"),
    (["backfill", "entry_by_n", "--rate", "0"], "--rate"),
    (["backfill", "entry_by_n", "--rate", "-5"], "--rate"),
    (["backfill", "entry_by_n", "--rate", "nan"], "--rate"),
    (["backfill", "entry_by_n", "--rate", "inf"], "--rate"),
    (["backfill", "entry_by_n", "--batch-size", "0"], "--batch-size"),
    (["backfill"], "required"),
    (["cleaner", "--rate", "0"], "--rate"),
    (["cleaner", "--rate", "nan"], "--rate"),
    (["demo", "--count", "0"], "--count"),
    (["index", "add", "entry_by_n", "--kind", "entry"], "--field"),
    (["index", "drop"], "required"),
    (["index"], "required"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
]


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    """argparse refuses them: one line, exit 2, and the database is never even opened."""
    db = tmp_path / "never.db"
    commands = [[*argv, f"--url=sqlite:///{db}"] for argv, _ in BAD_ARGUMENTS]
    outcomes = run_all(commands)
    assert_each_says(outcomes, [word for _, word in BAD_ARGUMENTS])
    assert_one_line_errors(outcomes, "error")
    assert not db.exists()


def test_bad_definitions_and_names_are_one_line(store: schemaless.Store, db_url: str) -> None:
    cases = [
        (["index", "add", "x", "--kind", "entry", "--field", "n:decimal"], "unknown type"),
        (["index", "add", "x", "--kind", "entry", "--field", "n"], "expected name:value"),
        (["index", "add", "x", "--kind", "entry", "--field", "n:int", "--field", "n:str"], "once"),
        (["index", "add", "x", "--kind", "Entry", "--field", "n:int"], "invalid kind"),
        (["index", "add", "x", "--kind", "entry", "--field", "n:int", "--shard-on", "m"], "m"),
        (
            ["index", "add", "x", "--kind", "entry", "--field", "n:int", "--where", "m"],
            "name=value",
        ),
        (["index", "add", "x", "--kind", "entry", "--field", "n:int", "--where", "m=[1]"], "where"),
        (["index", "add", "x", "--kind", "entry", "--field", "n:int", "--descending", "m"], "m"),
        (["index", "drop", "nope"], "no index named"),
        (["backfill", "nope"], "no index named"),
        (["verify", "nope"], "no index named"),
        (["index", "drop", "Robert'); DROP TABLE entities;--"], "index"),
    ]
    outcomes = run_all([[*argv, f"--url={db_url}"] for argv, _ in cases])
    assert_each_says(outcomes, [word for _, word in cases])
    assert_one_line_errors(outcomes, "schemaless: ")
    assert store.indexes() == [] and store.put("entry", {"n": 1}).version == 1


def test_a_metrics_port_already_taken_is_one_line(store: schemaless.Store, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        outcome = run_all([["indexer", "--burst", f"--metrics-port={port}", f"--url={db_url}"]])
    assert_one_line_errors(outcome, "already in use")


def test_a_batch_size_of_zero_never_loops_with_changes_waiting(
    store: schemaless.Store, db_url: str
) -> None:
    """It looped forever before: a batch of 0 rows is never 'drained' while changes wait."""
    store.put_many("entry", [{"n": n} for n in range(3)])
    outcome = run_all([["indexer", "--burst", "--batch-size=0", f"--url={db_url}"]], timeout=20)
    assert_one_line_errors(outcome, "--batch-size")
    assert store.pending_changes() == 3
