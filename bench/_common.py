"""What every benchmark under bench/ shares: its options, its server, its timing and its report.

Each benchmark runs our code and its anchor (raw mysqlclient, the Django ORM) in the same run,
on the same server, and prints one row per measurement: our rate, the anchor's, and the ratio
(ours / anchor, so above 1 means faster than the anchor). Without ``--url`` it starts a private
durable server (``MySQLServer(durable=True)``: every commit really reaches the disk, as in
production) and removes it afterwards.

    args = parse_args(__doc__)
    with mysql_server(args.url) as server, database(server, "bench_x") as url:
        ...  # ready_ours() and ready_raw() connect, warm up and return the callable to time
        report([compare("get", "gets/s", ready_ours, ready_raw, rounds=8)], args.json)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Run as `python bench/x.py` from a checkout, measure that checkout's package, installed or not.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url  # noqa: E402

from schemaless import Index  # noqa: E402
from schemaless.testing import (  # noqa: E402
    MySQLServer,
    create_database,
    drop_database,
    mysql_connection,
)

# The workload of indexes.py and backfill.py: entries, and the index of a user's by time.
KIND = "entry"
INDEX = Index(
    "entry_by_user",
    kind=KIND,
    fields={"user_id": "int", "published": "datetime"},
    shard_on="user_id",
)

# A private server is sized like a production one, not like the test suite's small one.
SERVER_SIZES = {
    "innodb_buffer_pool_size": 1 << 30,  # the store benchmark's two 200k-row tables: ~600 MB
    # The test server's 48 MB redo log fills every few seconds under a 1M-row backfill, and
    # InnoDB then stalls every writer while it flushes to make room: a stall of the server's
    # size, not of the work measured. 512 MB is a modest production setting.
    "innodb_log_file_size": 512 << 20,
}


def parse_args(
    description: str | None,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The options every benchmark takes: --url, --quick and --json PATH; ``extra`` adds its own."""
    parser = argparse.ArgumentParser(
        description=(description or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        help="a MySQL server URL naming no database (mysql+mysqldb://root@127.0.0.1:3306/); "
        "the benchmark creates and drops its own databases there. "
        "Default: a private durable server of its own",
    )
    parser.add_argument("--quick", action="store_true", help="a small run, under a minute")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


@contextmanager
def mysql_server(url: str | None) -> Iterator[str]:
    """The URL of the server to measure on: ``url``, or a private durable server started now.

    The private server's InnoDB buffer pool is grown to hold every benchmark's tables, so that
    reads measure the code and the server rather than the disk, and its redo log to a size a
    production server would have; a server given by ``url`` is measured as it is.
    """
    if url:
        yield url
        return
    print("starting a private durable MariaDB/MySQL server ...", file=sys.stderr)
    with MySQLServer(durable=True) as server:
        _resize(server.url, SERVER_SIZES)
        _PRIVATE.add(_address(server.url))
        try:
            yield server.url
        finally:
            _PRIVATE.discard(_address(server.url))


def _resize(server_url: str, sizes: dict[str, int]) -> None:
    connection = raw_connection(server_url)
    try:
        cursor = connection.cursor()
        for variable, size in sizes.items():
            cursor.execute(f"SET GLOBAL {variable} = {int(size)}")
            for _ in range(1200):  # a resize may run in the background; wait until it is done
                cursor.execute(f"SELECT @@{variable}")
                if cursor.fetchone()[0] >= size:
                    break
                time.sleep(0.05)
    finally:
        connection.close()


def raw_connection(url: str, *, autocommit: bool = True) -> Any:
    """A mysqlclient connection with the session settings schemaless's engines use: the anchor's."""
    connection = mysql_connection(
        url,
        charset="utf8mb4",
        init_command="SET time_zone = '+00:00'",
        autocommit=autocommit,
    )
    connection.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return connection


_PRIVATE: set[tuple[str, int]] = set()  # (host, port) of the servers this run started


def _address(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 3306


@contextmanager
def apart(url: str) -> Iterator[bool]:
    """This process on one core and the server's threads on the others, while inside.

    On a small machine the scheduler puts a client and the server it waits on sometimes on
    one core and sometimes on two. One core hands a query over faster, but then each evicts
    the other's caches, which costs a client in proportion to the Python it runs: on our 2-core
    machine the indexed query measured 0.68-0.77x its raw join unpinned, from run to run, and
    0.80-0.85x pinned. Pinned apart, every run measures the same placement, the one of a
    database on a machine of its own. Only a server this run started is pinned (True); one
    given by --url is left as it is (False).
    """
    cpus = sorted(os.sched_getaffinity(0))
    try:
        own = _address(url) in _PRIVATE and len(cpus) > 1
        threads = _threads(url) if own else []
    except (OSError, ValueError):  # no /proc, or a pid file we cannot read: measure as it is
        threads = []
    if not threads:
        yield False
        return
    _pin([0], {cpus[-1]})  # this thread: the benchmark runs on one
    _pin(threads, set(cpus[:-1]))
    try:
        yield True
    finally:
        _pin([0], set(cpus))
        with contextlib.suppress(Exception):  # the server may be gone: nothing left to unpin
            _pin(_threads(url), set(cpus))


def _threads(url: str) -> list[int]:
    """The thread ids of the server at ``url``, found through its pid file."""
    connection = raw_connection(url)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT @@pid_file")
        pid = int(Path(cursor.fetchone()[0]).read_text().strip())
    finally:
        connection.close()
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def _pin(threads: list[int], cpus: set[int]) -> None:
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


@contextmanager
def database(server_url: str, name: str) -> Iterator[str]:
    """The URL of a new, empty database ``name``, dropped again afterwards.

    A database of that name that an interrupted run left behind is dropped first.
    """
    drop_database(server_url, name)
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)


@dataclass(frozen=True)
class Result:
    """One measurement: our rate and the anchor's, in ``unit`` (higher is better)."""

    name: str
    ours: float
    anchor: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.ours / self.anchor if self.anchor else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def rate(run: Callable[[], int]) -> float:
    """Operations per second of one call of ``run``, which returns how many it performed."""
    start = time.perf_counter()
    ops = run()
    return ops / (time.perf_counter() - start)


def compare(
    name: str,
    unit: str,
    ours: Callable[[], Callable[[], int]],
    anchor: Callable[[], Callable[[], int]],
    *,
    rounds: int,
) -> Result:
    """Time ours and the anchor alternately for ``rounds`` rounds; keep each one's median.

    ``ours`` and ``anchor`` each ready one round, untimed (connect, warm up, prepare the
    input), and return the callable that is timed. The order flips every round, so that a
    drift of the machine or the server (a flush, a checkpoint, a neighbour's load) does not
    favour one side.
    """
    ours_rates: list[float] = []
    anchor_rates: list[float] = []
    for n in range(rounds):
        sides = [(ours, ours_rates), (anchor, anchor_rates)]
        for ready, rates in sides if n % 2 == 0 else reversed(sides):
            rates.append(rate(ready()))
    result = Result(name, statistics.median(ours_rates), statistics.median(anchor_rates), unit)
    print(f"  {name}: ours {_spread(ours_rates)}  anchor {_spread(anchor_rates)}", file=sys.stderr)
    return result


def _spread(rates: list[float]) -> str:
    return f"{min(rates):,.0f}..{max(rates):,.0f}"


def report(results: list[Result], json_path: Path | None = None) -> None:
    """Print the table of results and, when asked, write them as a JSON list."""
    rows = [("name", "ours", "anchor", "unit", "ratio")]
    rows += [
        (r.name, f"{r.ours:,.0f}", f"{r.anchor:,.0f}", r.unit, f"{r.ratio:.2f}") for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    if json_path is not None:
        json_path.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
