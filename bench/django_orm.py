"""The Django backend against Django's own ORM on a plain MySQL table, on the same server.

The same model twice: ``Entry``, a schemaless model on a ``schemaless.django.backends.mysql``
alias (its index ``(user_id, -published)`` sharded on user_id, indexed by the indexer), and
``PlainEntry``, an ordinary Django model on Django's own mysql backend, with a UUID primary key
and a composite index on ``(user_id, -published)``. Each gets a database of its own on one
server, pre-filled alike (20k entries; 5k with --quick), with 1000 users:

    create       Model.objects.create(user_id=..., title=...)
    get          Model.objects.get(pk=...) of a random pre-filled entry
    bulk_create  Model.objects.bulk_create(1000 instances)
    filter       list(Model.objects.filter(user_id=u).order_by("-published")[:10])
    save         obj.title = ...; obj.save() of an instance loaded beforehand
    create_floor what the design allows a create: raw mysqlclient writing an entity and its
                 change row in one transaction, sent as one query (what ``create`` sends),
                 vs a raw INSERT of the plain row; ``create`` can at best match this ratio
    filter_floor what the design allows ``filter``: the SQL each side sends for it (ours: the
                 index rows joined to their entities through ``entities.id``), run raw

Rounds alternate which side goes first (see _common.compare); the median of each side's rates
is kept, and the ratio is ours / Django's (above 1: faster). Single-threaded, with the benchmark
on one core and a private server on the others (see _common.apart).

    .venv/bin/python bench/django_orm.py [--quick] [--url mysql+mysqldb://root@127.0.0.1:3306/]
                                         [--json results.json]
"""

from __future__ import annotations

import io
import random
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import _common
from sqlalchemy.engine import make_url

USERS = 1000
BATCH = 1000  # bulk_create


@dataclass(frozen=True)
class Size:
    entries: int  # pre-filled on each side
    ops: int  # per round, for create, get, filter and save
    batches: int  # bulk_create calls per round
    rounds: int  # per side, an even number


FULL = Size(entries=20_000, ops=1000, batches=3, rounds=10)
QUICK = Size(entries=5_000, ops=300, batches=1, rounds=6)


def setup(ours_url: str, plain_url: str) -> tuple[Any, Any]:
    """Configure Django with the two aliases and return the two models, their tables made."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["schemaless.django"],
        DATABASES={
            "default": _alias("django.db.backends.mysql", plain_url, {"charset": "utf8mb4"}),
            "entities": _alias("schemaless.django.backends.mysql", ours_url, {"INDEXING": "async"}),
        },
        DATABASE_ROUTERS=["schemaless.django.Router"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING_CONFIG=None,
    )
    django.setup()
    entry, plain = _models()
    from django.db import connections

    connections["entities"].prepare_database()
    for alias, model in (("entities", entry), ("default", plain)):
        with connections[alias].schema_editor() as editor:
            editor.create_model(model)
    return entry, plain


def _alias(engine: str, url: str, options: dict[str, Any]) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "ENGINE": engine,
        "NAME": parsed.database,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
    }


def _models() -> tuple[Any, Any]:
    from django.db import models
    from django.utils import timezone as dj_timezone

    from schemaless.django import models as sl

    class Entry(sl.Model):
        user_id = models.IntegerField()
        title = models.CharField(max_length=200)
        rank = models.IntegerField(null=True)
        published = models.DateTimeField(default=dj_timezone.now)

        class Meta:
            app_label = "bench"
            db_table = "bench_entry"
            indexes = [
                sl.Index(
                    fields=["user_id", "-published"], name="bench_user_pub", shard_on="user_id"
                )
            ]

    class PlainEntry(models.Model):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4)
        user_id = models.IntegerField()
        title = models.CharField(max_length=200)
        rank = models.IntegerField(null=True)
        published = models.DateTimeField(default=dj_timezone.now)

        class Meta:
            app_label = "bench"
            db_table = "bench_plain_entry"
            indexes = [models.Index(fields=["user_id", "-published"], name="plain_user_pub")]

    return Entry, PlainEntry


class Fields:
    """Field values of entries: a user of USERS, a title, a rank, a published time in a year."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def one(self) -> dict[str, Any]:
        rng = self.rng
        return {
            "user_id": rng.randrange(1, USERS + 1),
            "title": f"entry {rng.randrange(10**9)} " + "x" * rng.randrange(40, 120),
            "rank": rng.randrange(100),
            "published": self.start + timedelta(seconds=rng.randrange(365 * 86400)),
        }


def fill(model: Any, count: int) -> list[Any]:
    """``count`` entries, bulk-created; their pks."""
    fields = Fields(seed=1)
    pks: list[Any] = []
    for start in range(0, count, BATCH):
        made = model.objects.bulk_create(
            model(**fields.one()) for _ in range(min(BATCH, count - start))
        )
        pks += [m.pk for m in made]
    return pks


def drain() -> None:
    from django.db import connections
    from schemaless_indexer.worker import Worker

    Worker(connections["entities"].store, burst=True, install_signal_handlers=False).run()


def floor(ours_url: str, plain_url: str, size: Size) -> _common.Result:
    """create_floor: the two rows of a create in one raw round trip vs the plain row's one."""
    import msgpack

    ours, plain = _common.raw_connection(ours_url), _common.raw_connection(plain_url)
    two_rows = (
        "BEGIN;INSERT INTO entities (id, kind, version, updated, body) "
        "VALUES (%s, 'bench_entry', 1, UTC_TIMESTAMP(6), %s);"
        "INSERT INTO entity_changes (entity_id, kind, version, created) "
        "VALUES (%s, 'bench_entry', 1, UTC_TIMESTAMP(6));COMMIT"
    )
    one_row = (
        "INSERT INTO bench_plain_entry (id, user_id, title, `rank`, published) "
        "VALUES (%s, %s, %s, %s, %s)"
    )

    def ours_round() -> Callable[[], int]:
        fields = Fields(seed=random.randrange(10**9))
        rows = []
        for _ in range(size.ops):
            body = {
                k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.one().items()
            }
            entity_id = uuid.uuid4().bytes
            rows.append((entity_id, b"\x01\x00" + msgpack.packb(body), entity_id))
        cursor = ours.cursor()

        def run() -> int:
            for row in rows:
                cursor.execute(two_rows, row)
                while cursor.nextset():
                    pass
            return len(rows)

        return run

    def plain_round() -> Callable[[], int]:
        fields = Fields(seed=random.randrange(10**9))
        rows = [(uuid.uuid4().hex, *fields.one().values()) for _ in range(size.ops)]
        cursor = plain.cursor()
        return lambda: sum(cursor.execute(one_row, row) for row in rows)

    try:
        return _common.compare(
            "create_floor", "creates/s", ours_round, plain_round, rounds=size.rounds
        )
    finally:
        ours.close()
        plain.close()


def filter_floor(entry: Any, plain: Any, urls: tuple[str, str], size: Size) -> _common.Result:
    """filter_floor: the SQL of ``filter`` on each side, as it was sent, run with mysqlclient."""
    from django.db import connections

    def sent(model: Any, alias: str) -> str:
        from django.test.utils import CaptureQueriesContext

        marker = 987654321  # a user no entry has: its literal in the SQL becomes a parameter
        with CaptureQueriesContext(connections[alias]) as captured:
            list(model.objects.filter(user_id=marker).order_by("-published")[:10])
        sql = captured[-1]["sql"]
        assert sql.count(str(marker)) == 1, sql
        return sql.replace("%", "%%").replace(str(marker), "%s")

    def side(model: Any, alias: str, url: str) -> Callable[[], Callable[[], int]]:
        sql = sent(model, alias)
        cursor = _common.raw_connection(url).cursor()

        def ready() -> Callable[[], int]:
            users = [random.randrange(1, USERS + 1) for _ in range(size.ops)]

            def run() -> int:
                for user in users:
                    cursor.execute(sql, (user,))
                    cursor.fetchall()
                return len(users)

            return run

        return ready

    ours_url, plain_url = urls
    ours, theirs = side(entry, "entities", ours_url), side(plain, "default", plain_url)
    return _common.compare("filter_floor", "queries/s", ours, theirs, rounds=size.rounds)


def measure(entry: Any, plain: Any, size: Size) -> list[_common.Result]:
    sides = {entry: fill(entry, size.entries), plain: fill(plain, size.entries)}
    drain()
    rng = random.Random(3)
    results = []

    def bench(name: str, unit: str, ready: Callable[[Any, list[Any]], Callable[[], int]]) -> None:
        def side(model: Any) -> Callable[[], Callable[[], int]]:
            return lambda: ready(model, sides[model])

        results.append(_common.compare(name, unit, side(entry), side(plain), rounds=size.rounds))

    def create(model: Any, _pks: list[Any]) -> Callable[[], int]:
        fields = Fields(seed=rng.randrange(10**9))
        values = [fields.one() for _ in range(size.ops)]
        create_one = model.objects.create
        return lambda: len([create_one(**v) for v in values])

    def get(model: Any, pks: list[Any]) -> Callable[[], int]:
        wanted = rng.sample(pks, size.ops)
        get_one = model.objects.get
        return lambda: len([get_one(pk=pk) for pk in wanted])

    def bulk(model: Any, _pks: list[Any]) -> Callable[[], int]:
        fields = Fields(seed=rng.randrange(10**9))
        batches = [[model(**fields.one()) for _ in range(BATCH)] for _ in range(size.batches)]
        return lambda: sum(len(model.objects.bulk_create(batch)) for batch in batches)

    def filter_(model: Any, _pks: list[Any]) -> Callable[[], int]:
        users = [rng.randrange(1, USERS + 1) for _ in range(size.ops)]
        objects = model.objects

        def run() -> int:
            for user in users:
                list(objects.filter(user_id=user).order_by("-published")[:10])
            return len(users)

        return run

    def save(model: Any, pks: list[Any]) -> Callable[[], int]:
        loaded = [model.objects.get(pk=pk) for pk in rng.sample(pks, size.ops)]
        for n, obj in enumerate(loaded):
            obj.title = f"saved {n} {obj.title[:50]}"

        def run() -> int:
            for obj in loaded:
                obj.save()
            return len(loaded)

        return run

    bench("create", "creates/s", create)
    bench("get", "gets/s", get)
    bench("filter", "queries/s", filter_)
    bench("save", "saves/s", save)
    bench("bulk_create", "rows/s", bulk)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__, argv)
    size = QUICK if args.quick else FULL
    with ExitStack() as stack:
        server = stack.enter_context(_common.mysql_server(args.url))
        ours_url = stack.enter_context(_common.database(server, "bench_django_ours"))
        plain_url = stack.enter_context(_common.database(server, "bench_django_plain"))
        entry, plain = setup(ours_url, plain_url)
        stack.callback(_close)
        print(f"pre-filling both sides to {size.entries:,} entries ...", file=sys.stderr)
        stack.enter_context(_common.apart(server))
        results = measure(entry, plain, size)
        results.append(filter_floor(entry, plain, (ours_url, plain_url), size))
        results.append(floor(ours_url, plain_url, size))
    _common.report(results, args.json)
    return 0


def _close() -> None:
    from django.db import connections

    connections.close_all()


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    sys.exit(main())
