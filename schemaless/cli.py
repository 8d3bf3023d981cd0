"""The ``schemaless`` command (also ``python -m schemaless``): migrate, run daemons, inspect.

Every subcommand reads the shards from ``--url`` (repeat it, or separate with commas), else from
``SCHEMALESS_URL``, else the SQLite file ``./schemaless.db``. The daemons live in ``indexer/``
and are imported only when their subcommand runs.

    $ schemaless migrate
    $ schemaless index add entry_by_user --kind entry --field user_id:int --shard-on user_id
    $ schemaless indexer --workers 2
    $ schemaless status --json
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from .connection import connect
from .errors import SchemalessError
from .index import Index
from .store import Store


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.run(args) or 0)
    except SchemalessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _store(args: argparse.Namespace) -> Store:
    url = ",".join(args.url) if args.url else None
    return connect(url)


# -- subcommands -------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    store = _store(args)
    store.migrate()
    print(f"migrated {len(store.shards)} shard(s)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(_store(args), count=args.count)


def _indexer(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return _supervise(args)
    from indexer.metrics import serve_metrics
    from indexer.worker import IndexerOptions, Worker

    store = _store(args)
    worker = Worker(
        store,
        IndexerOptions(batch_size=args.batch_size),
        burst=args.burst,
        max_batches=args.max_batches,
    )
    if args.metrics_port:
        serve_metrics(worker, args.metrics_port)
    worker.run()
    logging.getLogger("indexer").info("stopped after %d changes", worker.stats.applied)
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Run N single-worker processes; pass SIGINT/SIGTERM on and wait for them."""
    argv = [sys.executable, "-m", "schemaless", "indexer", "--batch-size", str(args.batch_size)]
    argv += [f"--url={u}" for u in args.url or []]
    argv += ["--burst"] if args.burst else []
    children = []
    for n in range(args.workers):
        port = [f"--metrics-port={args.metrics_port + n}"] if args.metrics_port else []
        children.append(subprocess.Popen(argv + port))

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    return max(child.wait() for child in children)


def _status(args: argparse.Namespace) -> int:
    from .status import format_status, status

    data = status(_store(args))
    print(json.dumps(data, indent=2, default=str) if args.json else format_status(data))
    return 0


def _index_add(args: argparse.Namespace) -> int:
    fields = dict(_pair(f, ":") for f in args.field)
    where = {k: _literal(v) for k, v in (_pair(w, "=") for w in args.where)}
    index = Index(args.name, kind=args.kind, fields=fields, shard_on=args.shard_on, where=where)
    store = _store(args)
    state = store.add_index(index)
    print(f"index {index.name}: {state}")
    if state == "building" and args.backfill:
        args.rate, args.batch_size = None, 1000
        return _backfill(args)
    return 0


def _index_list(args: argparse.Namespace) -> int:
    for index, state in _store(args).indexes():
        print(f"{index.name:<24} {state:<9} {index!r}")
    return 0


def _index_drop(args: argparse.Namespace) -> int:
    _store(args).drop_index(args.name)
    print(f"index {args.name}: dropped")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from indexer.backfill import Backfill

    done = Backfill(_store(args), args.name, rate=args.rate, batch_size=args.batch_size).run()
    print(f"index {args.name}: backfilled {done} entities")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from indexer.cleaner import Cleaner

    report = Cleaner(_store(args)).verify(args.name, repair=args.repair)
    print(report.format())
    return 0 if report.is_clean or args.repair else 1


def _cleaner(args: argparse.Namespace) -> int:
    from indexer.cleaner import Cleaner

    Cleaner(_store(args), rate=args.rate).run()
    return 0


# -- parsing -----------------------------------------------------------------------------------


def _pair(text: str, sep: str) -> tuple[str, str]:
    key, found, value = text.partition(sep)
    if not found:
        raise SchemalessError(f"expected name{sep}value, got {text!r}")
    return key, value


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="schemaless", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", action="append", help="a shard URL (repeat for shards)")
    common.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(run=run)
        return p

    command("migrate", _migrate, "create or upgrade the fixed tables on every shard")
    demo = command("demo", _demo, "store, index and query entities, printing what happens")
    demo.add_argument("--count", type=int, default=5000)
    ix = command("indexer", _indexer, "drain the change log into the index tables")
    ix.add_argument("--burst", action="store_true", help="exit once the change log is empty")
    ix.add_argument("--workers", type=int, default=1)
    ix.add_argument("--batch-size", type=int, default=500)
    ix.add_argument("--max-batches", type=int, default=None)
    ix.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics")
    st = command("status", _status, "show the change log's lag and every index's state")
    st.add_argument("--json", action="store_true")
    bf = command("backfill", _backfill, "build a building index from the stored entities")
    bf.add_argument("name")
    bf.add_argument("--rate", type=float, default=None, help="at most this many entities/s")
    bf.add_argument("--batch-size", type=int, default=1000)
    vf = command("verify", _verify, "compare indexes with the entities (exit 1 when wrong)")
    vf.add_argument("name", nargs="?")
    vf.add_argument("--repair", action="store_true")
    cl = command("cleaner", _cleaner, "verify and repair continuously, recent entities first")
    cl.add_argument("--rate", type=float, default=1000.0, help="entities/s to visit")
    _index_commands(sub, common)
    return parser


def _index_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    index = sub.add_parser("index", help="add, list or drop indexes")
    isub = index.add_subparsers(required=True, metavar="ACTION")
    add = isub.add_parser("add", parents=[common], help="create an index table and register it")
    add.set_defaults(run=_index_add)
    add.add_argument("name")
    add.add_argument("--kind", required=True)
    add.add_argument("--field", action="append", required=True, help="name:type, in key order")
    add.add_argument("--shard-on", default=None)
    add.add_argument("--where", action="append", default=[], help="field=value (partial index)")
    add.add_argument("--backfill", action="store_true", help="backfill it now")
    lst = isub.add_parser("list", parents=[common], help="list the indexes")
    lst.set_defaults(run=_index_list)
    drop = isub.add_parser("drop", parents=[common], help="retire an index and drop its table")
    drop.set_defaults(run=_index_drop)
    drop.add_argument("name")
