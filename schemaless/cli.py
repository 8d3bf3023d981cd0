"""The ``schemaless`` command (also ``python -m schemaless``): migrate, run daemons, inspect.

Every subcommand reads the shards from ``--url`` (repeat it, or separate with commas), else from
``SCHEMALESS_URL``, else the SQLite file ``./schemaless.db``. The daemons live in the checkout's
``indexer/`` (``schemaless_indexer`` once installed) and are imported only when their subcommand
runs.

    $ schemaless migrate
    $ schemaless index add entry_by_user --kind entry --field user_id:int --shard-on user_id
    $ schemaless indexer --workers 2
    $ schemaless status --json

Every failure is one line on stderr and a non-zero exit, never a traceback (``-v`` adds it):
2 for bad arguments, an unusable store (unreachable, unmigrated, misconfigured) or an error the
store raised; 1 only for ``verify`` finding wrong index rows; 3 for an unexpected error (a bug:
rerun with ``-v`` and report the traceback). Arguments are checked before any work is done, and
the daemons check that every shard answers and is migrated before they start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .connection import connect
from .errors import SchemalessError
from .index import Index
from .store import Store

EXIT_USAGE = 2  # bad arguments, an unusable store, an error the store raised
EXIT_BUG = 3  # an exception of no schemaless type
MAX_WORKERS = 64
MAX_BATCH = 1000  # DESIGN: no statement touches more than 1000 rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "metrics_port", None) and args.metrics_port + args.workers > 65536:
        parser.error(
            f"--metrics-port {args.metrics_port}: {args.workers} workers need ports past 65535"
        )
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.run(args) or 0)
    except SchemalessError as exc:
        return _fail(args, str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130  # as a shell reports a command ended by SIGINT
    except Exception as exc:  # a bug, or a driver error that escaped the shard layer
        text = f"unexpected {type(exc).__name__}: {exc} (rerun with -v for the traceback)"
        return _fail(args, text, EXIT_BUG)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    """Say what went wrong in one line on stderr (after the traceback, with -v)."""
    if args.verbose:
        traceback.print_exc()
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    print(f"schemaless: {lines[0] if lines else 'failed'}", file=sys.stderr)
    return code


def _store(args: argparse.Namespace, *, ready: bool = True) -> Store:
    """The store that --url (or SCHEMALESS_URL) names.

    ``ready`` reads every shard's change log first, so that an unreachable, unknown or
    unmigrated database is one error line now, not a daemon that starts, logs and then fails
    (or, as a daemon that outlives its servers, waits forever for a URL that was wrong).
    """
    url = ",".join(args.url) if args.url else None
    store = connect(url, allow_pickle=args.allow_pickle)
    if ready:
        store.pending_changes()
    return store


# -- subcommands -------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    store = _store(args, ready=False)
    store.migrate()
    print(f"migrated {len(store.shards)} shard(s)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(_store(args, ready=False), count=args.count)  # the demo migrates first


def _indexer(args: argparse.Namespace) -> int:
    if args.retry_set_aside:
        return _retry_set_aside(args)
    if args.workers > 1:
        return _supervise(args)
    from schemaless_indexer.metrics import serve_metrics
    from schemaless_indexer.worker import IndexerOptions, Worker

    # A worker given --shard reads only those shards (the others may be down meanwhile).
    store = _store(args, ready=not args.shards)
    worker = Worker(
        store,
        IndexerOptions(batch_size=args.batch_size),
        burst=args.burst,
        max_batches=args.max_batches,
        shards=args.shards,
    )
    if args.metrics_port:
        try:
            serve_metrics(worker, args.metrics_port)
        except OSError as exc:  # taken, or not ours to bind
            raise SchemalessError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from exc
    worker.run()
    stats = worker.stats
    logging.getLogger("schemaless_indexer").info(
        "stopped after %d changes (%d entities left out of an index, %d set aside)",
        stats.applied,
        stats.skipped,
        stats.set_aside,
    )
    return 0


def _retry_set_aside(args: argparse.Namespace) -> int:
    """Turn the entities set aside back into changes; the indexer applies them next."""
    from .failures import requeue

    print(f"re-queued {requeue(_store(args).shards)} set-aside entities")
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Run N single-worker processes; pass SIGINT/SIGTERM on and wait for them."""
    _store(args, ready=not args.shards).close()  # a wrong URL: one error, not one per child
    argv = [sys.executable, "-m", "schemaless", "indexer", "--batch-size", str(args.batch_size)]
    argv += [f"--url={u}" for u in args.url or []]
    argv += ["--burst"] if args.burst else []
    argv += [f"--shard={name}" for name in args.shards or []]
    argv += ["--allow-pickle"] if args.allow_pickle else []
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
    pairs = [_pair(f, ":") for f in args.field]
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise SchemalessError(f"--field: each field once, got {[name for name, _ in pairs]}")
    where = {k: _literal(v) for k, v in (_pair(w, "=") for w in args.where)}
    index = Index(
        args.name,
        kind=args.kind,
        fields=fields,
        shard_on=args.shard_on,
        where=where,
        descending=args.descending,
    )
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
    from schemaless_indexer.backfill import Backfill

    done = Backfill(_store(args), args.name, rate=args.rate, batch_size=args.batch_size).run()
    print(f"index {args.name}: backfilled {done} entities")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from schemaless_indexer.cleaner import Cleaner

    report = Cleaner(_store(args)).verify(args.name, repair=args.repair)
    print(report.format())
    return 0 if report.is_clean or (args.repair and not report.undecodable) else 1


def _cleaner(args: argparse.Namespace) -> int:
    from schemaless_indexer.cleaner import Cleaner

    Cleaner(_store(args), rate=args.rate).run()
    return 0


# -- parsing -----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (and exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    return parse


def _rate(text: str) -> float:
    """An argparse type: a finite number of entities per second above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


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
    parser = _Parser(prog="schemaless", description=__doc__.split("\n")[0])
    common = _Parser(add_help=False)
    common.add_argument("--url", action="append", help="a shard URL (repeat for shards)")
    common.add_argument("-v", "--verbose", action="store_true")
    store_arguments(common)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(run=run)
        return p

    command("migrate", _migrate, "create or upgrade the fixed tables on every shard")
    demo = command("demo", _demo, "store, index and query entities, printing what happens")
    demo.add_argument("--count", type=_whole(1), default=5000)
    for name, shared in SHARED.items():
        shared.arguments(command(name, shared.run, shared.help))
    cl = command("cleaner", _cleaner, "verify and repair continuously, recent entities first")
    cl.add_argument("--rate", type=_rate, default=1000.0, help="entities/s to visit")
    _index_commands(sub, common)
    _shards_commands(sub, common)
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
    add.add_argument(
        "--descending", action="append", default=[], help="a field stored newest/largest first"
    )
    add.add_argument("--backfill", action="store_true", help="backfill it now")
    lst = isub.add_parser("list", parents=[common], help="list the indexes")
    lst.set_defaults(run=_index_list)
    drop = isub.add_parser("drop", parents=[common], help="retire an index and drop its table")
    drop.set_defaults(run=_index_drop)
    drop.add_argument("name")


def _shards_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    shards = sub.add_parser("shards", help="add shards and move buckets between them")
    ssub = shards.add_subparsers(required=True, metavar="ACTION")
    add = ssub.add_parser("add", parents=[common], help="migrate a new shard into the store")
    add.set_defaults(run=_shards_add)
    add.add_argument("name")
    add.add_argument("shard_url", metavar="URL")
    move = ssub.add_parser(
        "move", parents=[common], help="move buckets (0-99,200) to a shard, online"
    )
    move.set_defaults(run=_shards_move)
    move.add_argument("buckets", nargs="?", help="buckets, as 0-99,200 (none: finish open moves)")
    move.add_argument("--to", dest="target", metavar="NAME")
    move.add_argument(
        "--abort", action="store_true", help="roll back the open moves not flipped yet"
    )
    rebalance = ssub.add_parser(
        "rebalance", parents=[common], help="move buckets so every shard owns an even share"
    )
    rebalance.set_defaults(run=_shards_rebalance)
    for p in (move, rebalance):
        p.add_argument("--group", default="default", help="the shard group (default: default)")
        p.add_argument("--batch-size", type=_whole(1, MAX_BATCH), default=500)
        p.add_argument(
            "--margin",
            type=_rate,
            default=10.0,
            help="seconds a catch-up pass looks back (a write's stamp to its commit, clock skew)",
        )
    lst = ssub.add_parser("list", parents=[common], help="shards, bucket counts, moves under way")
    lst.set_defaults(run=_shards_list)
    lst.add_argument("--json", action="store_true")


def _shards_add(args: argparse.Namespace) -> int:
    from .connection import shard_urls
    from .moves import add_shard

    named = shard_urls(",".join(args.url) if args.url else None)
    if args.name in named:
        raise SchemalessError(f"shard {args.name!r} is listed already")
    named[args.name] = args.shard_url
    store = connect(named, allow_pickle=args.allow_pickle)
    add_shard(store)
    print(
        f"shard {args.name} added (no buckets yet): list it in every process's --url or "
        f"SCHEMALESS_URL, then `schemaless shards move` or `rebalance`"
    )
    return 0


def _mover(args: argparse.Namespace) -> Any:
    from .moves import MoveOptions, Mover

    options = MoveOptions(batch_size=args.batch_size, margin=args.margin)
    return Mover(_store(args), options, progress=_progress)


def _progress(name: str, done: int, total: int) -> Any:
    from schemaless_indexer.backfill import Cursor, Progress

    return Progress(name, [Cursor(0, 0, 0, done, total)], show=sys.stderr.isatty())


def _shards_move(args: argparse.Namespace) -> int:
    from .moves import parse

    mover = _mover(args)
    if args.abort:
        for move in mover.open_moves():
            print(mover.abort(move).describe())
        return 0
    if args.buckets is not None and args.target is None:
        raise SchemalessError("shards move: --to NAME says where the buckets go")
    moves = mover.resume()  # a killed move first: its buckets stay frozen until it is done
    if args.buckets is not None:
        planned = mover.plan(parse(args.buckets), args.target, args.group)
        moves += [mover.run(move) for move in planned]
    for move in moves:
        print(move.describe())
    if not moves:
        print("nothing to move")
    return 0


def _shards_rebalance(args: argparse.Namespace) -> int:
    mover = _mover(args)
    moves = mover.resume()
    moves += [mover.run(move) for move in mover.rebalance(args.group)]
    for move in moves:
        print(move.describe())
    if not moves:
        print("balanced already")
    return 0


def _shards_list(args: argparse.Namespace) -> int:
    from .moves import listed

    store = _store(args)
    maps = store.shards.maps()
    owned = {
        shard.name: {group: m.owners.count(shard.name) for group, m in maps.items()}
        for shard in store.shards
    }
    shards = [{"name": name, "buckets": counts} for name, counts in owned.items()]
    moves = [move.as_json() for move in listed(store.shards) if move.is_open]
    versions = {g: m.version for g, m in maps.items()}
    if args.json:
        print(json.dumps({"maps": versions, "shards": shards, "moves": moves}, indent=2))
        return 0
    print("maps: " + ", ".join(f"{g} v{v}" for g, v in versions.items()))
    for name, counts in owned.items():
        held = ", ".join(f"{g}: {n}" for g, n in counts.items() if n)
        print(f"  {name:<12} buckets {held or 'none'}")
    for move in listed(store.shards):
        if move.is_open:
            print(f"  {move.describe()}")
    return 0


# -- what the Django management commands share -------------------------------------------------
# `manage.py schemaless_indexer | schemaless_backfill | schemaless_verify | schemaless_status`
# take the options of these subcommands from here (one definition), and run them through
# `run_shared` on the store their --database alias names.


def store_arguments(p: argparse.ArgumentParser) -> None:
    """The options of how to open the store, besides where it is (--url, --database)."""
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read entities stored with serializer='pickle' (trusted data only: reading runs code)",
    )


def _indexer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--burst", action="store_true", help="exit once the change log is empty")
    p.add_argument("--workers", type=_whole(1, MAX_WORKERS), default=1)
    p.add_argument("--batch-size", type=_whole(1, MAX_BATCH), default=500)
    p.add_argument("--max-batches", type=_whole(1), default=None)
    p.add_argument(
        "--shard",
        action="append",
        dest="shards",
        metavar="NAME",
        help="drain only this shard's change log (repeat it; default: every shard)",
    )
    p.add_argument(
        "--metrics-port",
        type=_whole(1, 65535),
        default=None,
        help="serve Prometheus metrics on 127.0.0.1:PORT (worker N of --workers on PORT+N)",
    )
    p.add_argument(
        "--retry-set-aside",
        action="store_true",
        help="re-queue the entities set aside as poison (once repaired), then exit",
    )


def _status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def _backfill_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--rate", type=_rate, default=None, help="at most this many entities/s")
    p.add_argument("--batch-size", type=_whole(1, MAX_BATCH), default=1000)


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?")
    p.add_argument("--repair", action="store_true")


@dataclasses.dataclass(frozen=True)
class Shared:
    """A subcommand that Django's ``manage.py schemaless_<name>`` runs too."""

    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None]


SHARED = {
    "indexer": Shared("drain the change log into the index tables", _indexer, _indexer_arguments),
    "status": Shared(
        "show the change log's lag and every index's state", _status, _status_arguments
    ),
    "backfill": Shared(
        "build a building index from the stored entities", _backfill, _backfill_arguments
    ),
    "verify": Shared(
        "compare indexes with the entities (exit 1 when wrong)", _verify, _verify_arguments
    ),
}


def run_shared(name: str, args: argparse.Namespace) -> int:
    """Run a shared subcommand on ``args`` (its options, and the shards as ``args.url``).

    Returns its exit status; a store error is raised, for the caller to report.

        >>> run_shared("status", argparse.Namespace(url=["s0=sqlite:///app.db"], json=True,
        ...                                          allow_pickle=False, verbose=False))
    """
    if getattr(args, "metrics_port", None) and args.metrics_port + args.workers > 65536:
        raise SchemalessError(
            f"--metrics-port {args.metrics_port}: {args.workers} workers need ports past 65535"
        )
    return int(SHARED[name].run(args) or 0)
