"""The same operations on Entry (schemaless) and PlainEntry (a Django table): same answers.

A seeded random run of creates, saves, updates, deletes and queries that both can answer, each
compared with Django's ORM on an ordinary SQLite table: the reference for Django's semantics.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import DataError, IntegrityError, NotSupportedError, connections
from django.db.models import Count, F, Max, Min, Q

from schemaless import IndexRequired
from tests.django.shop.models import Entry, PlainEntry

pytestmark = pytest.mark.usefixtures("entities")

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
FIELDS = ("user_id", "title", "rank", "price", "published")


def rows(qs: Any) -> list[tuple[Any, ...]]:
    return list(qs.values_list(*FIELDS))


def same(make_query: Any, ordered: bool = True) -> None:
    """The query built on both models gives the same rows (as a sorted list if unordered)."""
    ours, theirs = rows(make_query(Entry)), rows(make_query(PlainEntry))
    if not ordered:
        ours, theirs = sorted(ours, key=repr), sorted(theirs, key=repr)
    assert ours == theirs


def seed(rng: random.Random, n: int) -> None:
    for i in range(n):
        values = {
            "user_id": rng.randrange(4),
            "title": rng.choice(["alpha", "beta", "gamma", "delta"]) + str(i),
            "rank": rng.choice([None, *range(5)]),
            "price": Decimal(rng.randrange(100000)) / 1000,  # rounded to 2 places by both
            "published": T0 + dt.timedelta(seconds=i),
        }
        Entry.objects.create(**values)
        PlainEntry.objects.create(**values)


@pytest.mark.parametrize("seed_value", [1, 2])
def test_same_operations_same_answers(seed_value: int) -> None:
    rng = random.Random(seed_value)
    seed(rng, 40)
    for _ in range(25):
        user, rank = rng.randrange(4), rng.randrange(5)
        same(lambda m, u=user: m.objects.filter(user_id=u).order_by("-published"))
        same(lambda m, u=user: m.objects.filter(user_id=u).order_by("published")[1:4])
        for nulls in (F("rank").asc(nulls_last=True), F("rank").desc(nulls_first=True)):
            same(lambda m, u=user, o=nulls: m.objects.filter(user_id=u).order_by(o, "published"))
        same(lambda m, u=user, r=rank: m.objects.filter(user_id=u, rank__gte=r), ordered=False)
        same(lambda m, u=user: m.objects.filter(user_id=u).exclude(rank=None), ordered=False)
        same(lambda m, r=rank: m.objects.filter(rank=r), ordered=False)
        same(lambda m, r=rank: m.objects.filter(rank__isnull=True), ordered=False)
        same(lambda m: m.objects.filter(rank__isnull=False), ordered=False)  # index-driven
        same(lambda m: m.objects.exclude(rank=None), ordered=False)  # the same, negated
        same(lambda m, u=user: m.objects.filter(Q(user_id=u), Q(rank=1) | Q(rank=2)), False)
        same(lambda m: m.objects.filter(title__startswith="beta"), ordered=False)
        users = rng.sample(range(4), 2)
        same(lambda m, us=users: m.objects.filter(user_id__in=us).order_by("published"))
        assert (
            Entry.objects.filter(user_id=user).count()
            == PlainEntry.objects.filter(user_id=user).count()
        )
        assert sorted(
            Entry.objects.filter(user_id__in=users).values_list("rank", flat=True).distinct(),
            key=repr,
        ) == sorted(
            PlainEntry.objects.filter(user_id__in=users).values_list("rank", flat=True).distinct(),
            key=repr,
        )
        same(lambda m, u=user, us=users: m.objects.filter(Q(user_id=u) | Q(user_id__in=us)), False)
        both(lambda m, u=user: list(m.objects.filter(user_id=u).dates("published", "day")))
        both(
            lambda m, us=users: list(
                m.objects.filter(user_id__in=us).datetimes("published", "hour", order="DESC")
            )
        )
        both(
            lambda m, u=user: m.objects.filter(user_id=u).aggregate(
                Min("published"), Max("published"), Count("pk")
            )
        )
        both(
            lambda m, us=users: m.objects.filter(user_id__in=us).aggregate(
                ranked=Count("rank"), ranks=Count("rank", distinct=True), titled=Count("title")
            )
        )
        _write(rng, user, rank)
        # Distinct over what is selected and what orders it (Django's SQL selects both).
        both(
            lambda m, us=users: list(
                m.objects.filter(user_id__in=us)
                .order_by("-published")
                .values_list("rank", flat=True)
                .distinct()
            )
        )
        salt = rng.randrange(100)
        both(lambda m, u=user, s=salt: _bulk_update(m, u, s))


def both(ask: Any) -> None:
    """``ask(model)`` answers the same on both."""
    assert ask(Entry) == ask(PlainEntry)


def _bulk_update(model: Any, user: int, salt: int) -> int:
    objs = list(model.objects.filter(user_id=user).order_by("published")[:5])
    for n, obj in enumerate(objs):
        obj.rank, obj.title = (salt + n) % 7 or None, f"{obj.title[:20]}~{salt}"
    return int(model.objects.bulk_update(objs, ["rank", "title"], batch_size=2))


def _write(rng: random.Random, user: int, rank: int) -> None:
    """One random write, done to both."""
    action = rng.choice(["update", "save", "delete", "create"])
    if action == "update":
        counts = [
            m.objects.filter(user_id=user, rank=rank).update(rank=rank + 1)
            for m in (Entry, PlainEntry)
        ]
    elif action == "save":
        counts = []
        for model in (Entry, PlainEntry):
            obj = model.objects.filter(user_id=user).order_by("published").first()
            if obj is not None:
                obj.title, obj.price = obj.title + "!", Decimal("1.239")
                obj.save()
            counts.append(obj is not None)
    elif action == "delete":
        counts = [
            m.objects.filter(user_id=user, rank=rank).delete()[0] for m in (Entry, PlainEntry)
        ]
    else:
        counts = []
        published = T0 + dt.timedelta(days=1, seconds=rng.randrange(10**6))
        for model in (Entry, PlainEntry):
            model.objects.create(user_id=user, title="new", rank=rank, published=published)
            counts.append(1)
    assert counts[0] == counts[1], action


def test_lookup_values_no_field_holds_answer_as_djangos_sql() -> None:
    """Ints beyond 64 bits match nothing or everything, by lookup (Django's
    IntegerFieldOverflow); a decimal lookup is compared as given, not rounded to the field."""
    seed(random.Random(3), 12)
    huge = 2**64
    asks = [
        lambda m: m.objects.filter(user_id=1, rank__gt=huge),
        lambda m: m.objects.filter(user_id=1, rank__lt=huge),
        lambda m: m.objects.filter(user_id=1, rank__gte=-huge),
        lambda m: m.objects.filter(user_id=1, rank__lte=-huge),
        lambda m: m.objects.filter(rank=huge),
        lambda m: m.objects.filter(user_id=1).exclude(rank__gt=huge),
        lambda m: m.objects.filter(Q(rank=huge) | Q(rank=2)),
        lambda m: m.objects.filter(user_id=1, rank__gte=1.5),
        lambda m: m.objects.filter(user_id=1, price=Decimal("12.345")),
        lambda m: m.objects.filter(user_id=1, price__gte=Decimal("50.005")),
        lambda m: m.objects.filter(user_id=1, price__lt=Decimal("123456789.1")),
    ]
    for ask in asks:
        same(ask, ordered=False)


def test_text_lookups_and_date_parts_answer_as_djangos_sql() -> None:
    """Lookups no index drives are checked on what an index of another condition yields:
    text (``icontains``, ``regex``...) and date parts (``__month``); ``__year`` and ``__date``
    are ranges an index drives. Dates are taken in the current zone, as Django's SQL does."""
    from django.utils import timezone

    for i in range(40):
        values = {
            "user_id": i % 3,
            "title": ["Alpha", "beta", "GAMMA", "delta"][i % 4] + f" {i}",
            "rank": i % 5,
            "published": T0 + dt.timedelta(days=11 * i, hours=i),
        }
        Entry.objects.create(**values)
        PlainEntry.objects.create(**values)
    for hour in (dt.datetime(2024, 12, 31, 20), dt.datetime(2025, 1, 1, 3)):  # another year
        when = hour.replace(tzinfo=dt.timezone.utc)  # in Tokyo or Los Angeles
        for model in (Entry, PlainEntry):
            model.objects.create(user_id=1, title="new year", published=when)
    day = dt.date(2024, 3, 7)  # 06:00 UTC on it: the day before in Los Angeles
    asks = [
        lambda m: m.objects.filter(user_id=1, title__icontains="ALP"),
        lambda m: m.objects.filter(user_id=1, title__contains="eta"),
        lambda m: m.objects.filter(user_id=1, title__iexact="beta 4"),
        lambda m: m.objects.filter(user_id=2, title__endswith="5"),
        lambda m: m.objects.filter(user_id=2, title__iendswith="A 2"),
        lambda m: m.objects.filter(user_id=0, title__istartswith="gam"),
        lambda m: m.objects.filter(user_id=0, title__regex=r"^[ab].* \d$"),
        lambda m: m.objects.filter(user_id=0, title__iregex=r"^(alpha|GAMMA)"),
        lambda m: m.objects.filter(user_id=1).exclude(title__icontains="a 1"),
        lambda m: m.objects.filter(Q(user_id=1), Q(title__icontains="x") | Q(rank=2)),
        lambda m: m.objects.filter(rank=3, title__contains=" 1"),
        lambda m: m.objects.filter(user_id=1, rank__startswith=1),  # SQL compares its text
        lambda m: m.objects.filter(user_id=1, rank__contains=2),
        lambda m: m.objects.filter(user_id=2, rank__regex=r"^[13]$"),
        lambda m: m.objects.filter(user_id=1, published__year=2024),
        lambda m: m.objects.filter(user_id=1, published__year__gt=2024),
        lambda m: m.objects.filter(user_id=1, published__year__lte=2024),
        lambda m: m.objects.filter(user_id=1, published__year__in=[2025]),
        lambda m: m.objects.filter(user_id__in=[0, 1, 2], published__date=day),
        lambda m: m.objects.filter(user_id=1, published__date=dt.date(2025, 1, 1)),
        lambda m: m.objects.filter(user_id=1, published__date__lte=dt.date(2024, 12, 31)),
        lambda m: m.objects.filter(user_id=2, published__date__gte=day),
        lambda m: m.objects.filter(user_id=2, published__date__lt=day),
        lambda m: m.objects.filter(user_id=2, published__date__range=(day, dt.date(2024, 6, 1))),
        lambda m: m.objects.filter(user_id=0, published__month=3),
        lambda m: m.objects.filter(user_id=0, published__month__in=[1, 2, 12]),
        lambda m: m.objects.filter(user_id=0, published__day__gte=15),
        lambda m: m.objects.filter(user_id=1, published__hour__lt=12),
        lambda m: m.objects.filter(user_id=1, published__week_day=1),
        lambda m: m.objects.filter(user_id=1, published__iso_week_day=7),
        lambda m: m.objects.filter(user_id=1, published__quarter=2),
        lambda m: m.objects.filter(user_id=1, published__week=9),
        lambda m: m.objects.filter(user_id=1, published__year__isnull=False),
    ]
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        with timezone.override(zone):
            for ask in asks:
                same(ask, ordered=False)
    with pytest.raises(NotSupportedError):  # a date field's text, as SQL casts it, differs
        list(Entry.objects.filter(user_id=1, published__contains="2024"))
    with pytest.raises(DataError):  # not a regular expression, refused before any read
        list(Entry.objects.filter(user_id=1, title__regex="(unclosed"))
    with pytest.raises(IndexRequired):  # no index drives any condition
        list(Entry.objects.filter(title__icontains="alp"))


def test_expressions_of_the_entitys_own_fields_answer_as_djangos_sql() -> None:
    """``update(rank=F("rank") + 1)`` and ``filter(rank__gt=F("user_id"))`` are computed on
    each stored body: NULL in, NULL out, as SQL."""
    seed(random.Random(4), 30)
    updates = [
        # Prices with two places: SQLite keeps the seed's third place and computes with it.
        lambda m: m.objects.filter(user_id=2).update(price=Decimal("10.25")),
        lambda m: m.objects.filter(user_id=1).update(rank=F("rank") + 1),
        lambda m: m.objects.filter(user_id=2).update(price=F("price") * 2 - 1, rank=F("user_id")),
        lambda m: m.objects.filter(user_id=3).update(rank=F("user_id") - F("rank")),
        lambda m: m.objects.filter(user_id=0).update(published=F("published") + dt.timedelta(1)),
    ]
    for update in updates:
        both(update)
        same(lambda m: m.objects.all(), ordered=False)
    asks = [
        lambda m: m.objects.filter(user_id=1, rank__gt=F("user_id")),
        lambda m: m.objects.filter(user_id__in=[0, 1, 2, 3], rank=F("user_id") + 1),
        lambda m: m.objects.filter(user_id=3).exclude(rank__lte=F("user_id") * 2),
    ]
    for ask in asks:
        same(ask, ordered=False)
    for model in (Entry, PlainEntry):  # a save of an expression, read back
        obj = model.objects.filter(user_id=1).order_by("published").first()
        obj.rank = F("rank") + 10
        obj.save()
        obj.refresh_from_db()
    same(lambda m: m.objects.filter(user_id=1), ordered=False)
    with pytest.raises(NotSupportedError):  # expressions in an __in
        list(Entry.objects.filter(user_id=1, rank__in=[F("user_id")]))
    with pytest.raises(NotSupportedError):  # a division: SQL's differs by server
        Entry.objects.filter(user_id=1).update(rank=F("rank") / 2)
    with pytest.raises(FieldError):  # mixed types: Django's own FieldError, before any read
        Entry.objects.filter(user_id=1).update(rank=F("title") + 1)  # (SQLite computes "a" + 1)
    store = connections["entities"].store
    odd = Entry.objects.filter(user_id=1).first()
    store.put("shop_entry", {**store.get(odd.pk).body, "rank": "x"}, id=odd.pk)  # another type
    with pytest.raises(DataError):  # not a TypeError: nothing is written
        Entry.objects.filter(user_id=1).update(rank=F("rank") + 1)
    assert store.get(odd.pk).body["rank"] == "x"
    assert list(Entry.objects.filter(user_id=1, rank__gt=F("user_id") - 5)) != []  # no raise
    store.put("shop_entry", {**store.get(odd.pk).body, "rank": 0}, id=odd.pk)
    PlainEntry.objects.filter(title=odd.title).update(rank=0)
    with pytest.raises(IntegrityError):  # NULL into NOT NULL, refused before any write
        Entry.objects.filter(user_id__in=[0, 1]).update(user_id=F("rank") + 1)
    same(lambda m: m.objects.all(), ordered=False)  # nothing was written


# Atoms of random filters: each a Q of one lookup, on the fields the two models share.
_ATOMS = [
    lambda r: Q(user_id=r.randrange(4)),
    lambda r: Q(user_id__in=r.sample(range(4), 2)),
    lambda r: Q(rank=r.choice([None, 0, 1, 2, 3])),
    lambda r: Q(rank__gte=r.randrange(5)),
    lambda r: Q(rank__isnull=r.choice([True, False])),
    lambda r: Q(rank__in=r.sample(range(5), 2)),
    lambda r: Q(title__startswith=r.choice(["Al", "b", "GA", "de"])),  # SQLite: any case
    lambda r: Q(title__icontains=r.choice(["a", "ET", "1", "x"])),
    lambda r: Q(title__contains=r.choice(["ph", "et", "1"])),
    lambda r: Q(title__endswith=r.choice(["1", "2", "a"])),
    lambda r: Q(title__iexact=r.choice(["ALPHA 1", "beta 2"])),
    lambda r: Q(published__year=r.choice([2024, 2025])),
    lambda r: Q(published__month=r.randrange(1, 13)),
    lambda r: Q(published__date__gte=dt.date(2024, r.randrange(1, 13), 1)),
    lambda r: Q(published__gte=T0 + dt.timedelta(days=r.randrange(300))),
    lambda r: Q(rank__gt=F("user_id")),
    lambda r: Q(rank=F("user_id") + 1),
    lambda r: Q(price__gt=Decimal(r.randrange(100))),
]


def _random_filter(r: random.Random) -> Q:
    """One to three atoms ANDed, each maybe negated or ORed with another."""
    q = Q()
    for _ in range(r.randrange(1, 4)):
        atom, form = r.choice(_ATOMS)(r), r.random()
        if form < 0.15:
            atom = ~atom
        elif form < 0.3:
            atom = atom | r.choice(_ATOMS)(r)
        q &= atom
    return q


def test_random_filters_and_writes_answer_as_djangos_sql() -> None:
    """Seeded random filters (orders, slices) and updates/deletes through them: where ours
    answers (an index drives a condition), the rows, counts and the whole table after each
    write are Django's on a plain table. A refusal (IndexRequired, NotSupportedError) is
    allowed; a different answer is not."""
    r = random.Random(5)
    for i in range(60):
        values = {
            "user_id": i % 4,
            "title": ["Alpha", "beta", "GAMMA", "delta"][i % 4] + f" {i}",
            "rank": r.choice([None, 0, 1, 2, 3, 4]),
            "price": Decimal(r.randrange(10000)) / 100,
            "published": T0 + dt.timedelta(days=7 * i, hours=i),
        }
        Entry.objects.create(**values)
        PlainEntry.objects.create(**values)
    answered = 0
    for _ in range(600):
        q, order = _random_filter(r), r.choice([None, "published", "-published", "rank", "title"])
        window = r.choice([slice(None), slice(0, 3), slice(1, 4), slice(2, None)])
        window = window if order else slice(None)  # an unordered slice is any rows
        try:
            ours = rows(_ordered(Entry.objects.filter(q), order)[window])
        except (IndexRequired, NotSupportedError):
            continue
        theirs = rows(_ordered(PlainEntry.objects.filter(q), order)[window])
        if not order:
            ours, theirs = sorted(ours, key=repr), sorted(theirs, key=repr)
        assert ours == theirs, q
        answered += 1
    written = 0
    for _ in range(150):
        q = _random_filter(r)
        change = r.choice([{"rank": r.randrange(5)}, {"rank": F("rank") + 1}, {"rank": None}])
        change = r.choice([change, {"title": "Zed 9"}, {"price": F("price") * 2}, {}])
        try:
            counts = [_changed(m.objects.filter(q), change) for m in (Entry, PlainEntry)]
        except (IndexRequired, NotSupportedError):
            continue
        assert counts[0] == counts[1], (q, change)
        same(lambda m: m.objects.all(), ordered=False)
        written += 1
    assert answered > 250 and written > 50  # most are served, so the comparison is real


def _ordered(qs: Any, order: str | None) -> Any:
    return qs.order_by(order, "title") if order else qs


def _changed(qs: Any, change: dict[str, Any]) -> int:
    """``update(**change)``, or a delete for an empty change; the count of rows."""
    return int(qs.update(**change)) if change else int(qs.delete()[0])
