"""Django's own QuerySet on schemaless entities: create, get, filter, order, slice, count,
update, delete, bulk_create, values, through the store and its indexes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import IntegrityError, NotSupportedError, connections
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncQuarter, TruncTime
from django.db.models.query import EmptyQuerySet

import schemaless
from tests.django.shop.models import Entry, Slot

pytestmark = pytest.mark.usefixtures("entities")

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def make(n: int = 9, **extra: Any) -> list[Entry]:
    """n entries: user_id n % 3, title t<n>, rank n, published T0 + n minutes."""
    return Entry.objects.bulk_create(
        Entry(
            user_id=i % 3,
            title=f"t{i}",
            rank=i,
            published=T0 + dt.timedelta(minutes=i),
            **extra,
        )
        for i in range(n)
    )


def titles(qs: Any) -> list[str]:
    return [e.title for e in qs]


def test_a_queryset_is_djangos_own() -> None:
    qs = Entry.objects.all()
    assert isinstance(qs, QuerySet)
    assert isinstance(qs.none(), EmptyQuerySet)
    assert qs.db == "entities"
    assert list(qs.none()) == []


def test_create_then_get_by_pk() -> None:
    e = Entry.objects.create(user_id=7, title="hi", tags=["a", "b"], extra={"k": 1})
    assert e.version == 1
    got = Entry.objects.get(pk=e.pk)
    assert (got.title, got.user_id, got.tags, got.extra) == ("hi", 7, ["a", "b"], {"k": 1})
    assert got.version == 1
    assert got.price == Decimal("0.00")
    assert got.published == e.published
    with pytest.raises(Entry.DoesNotExist):
        Entry.objects.get(pk="00000000-0000-0000-0000-000000000000")


def test_filter_order_and_slice_go_through_the_index() -> None:
    make()
    qs = Entry.objects.filter(user_id=1).order_by("-published")
    assert titles(qs) == ["t7", "t4", "t1"]
    assert titles(qs[:2]) == ["t7", "t4"]
    assert titles(qs[1:]) == ["t4", "t1"]
    both = Entry.objects.filter(user_id__in=[0, 1]).order_by("published")
    assert titles(both) == ["t0", "t1", "t3", "t4", "t6", "t7"]
    assert titles(Entry.objects.filter(user_id=2, published__gte=T0 + dt.timedelta(minutes=5))) == [
        "t5",
        "t8",
    ]
    assert Entry.objects.filter(user_id=1).order_by("-published").first().title == "t7"
    assert Entry.objects.filter(user_id=1).latest("published").title == "t7"


def test_count_exists_and_len() -> None:
    make()
    assert Entry.objects.count() == 9
    assert Entry.objects.filter(user_id=1).count() == 3
    assert Entry.objects.filter(user_id=1)[:2].count() == 2
    assert Entry.objects.filter(user_id=1, rank__gt=3).count() == 2  # a residual condition
    assert Entry.objects.filter(user_id=5).exists() is False
    assert Entry.objects.filter(user_id=1).exists() is True
    assert len(Entry.objects.filter(user_id=2)) == 3
    assert Entry.objects.aggregate(n=Count("id")) == {"n": 9}


def test_a_condition_no_index_holds_is_residual() -> None:
    make()
    found = Entry.objects.filter(user_id=1, price=Decimal("0")).order_by("-published")
    assert titles(found) == ["t7", "t4", "t1"]
    assert set(titles(Entry.objects.filter(Q(user_id=1) & ~Q(rank=4)))) == {"t1", "t7"}
    either = Entry.objects.filter(user_id=0).filter(Q(rank=0) | Q(rank=6))
    assert set(titles(either)) == {"t0", "t6"}


def test_an_in_on_the_leading_field_with_an_order_on_the_next() -> None:
    make()
    latest = Entry.objects.filter(user_id__in=[2, 0]).order_by("-published")
    assert titles(latest[:3]) == ["t8", "t6", "t5"]
    at = T0 + dt.timedelta(minutes=4)
    assert titles(Entry.objects.filter(user_id__in=[1], published=at).order_by("published")) == [
        "t4"
    ]
    assert titles(Entry.objects.filter(user_id__in=[1, 2], rank__lt=5).order_by("-published")) == [
        "t4",
        "t2",
        "t1",
    ]


def test_a_filter_no_index_can_drive_raises_index_required_a_field_error() -> None:
    make()
    with pytest.raises(FieldError) as caught:
        list(Entry.objects.filter(price=Decimal("1")))
    assert isinstance(caught.value, schemaless.IndexRequired)


@pytest.mark.parametrize("store_options", [{"MAX_EXAMINED": 5}])
def test_past_max_examined_a_residual_query_raises_index_required() -> None:
    make(30)
    assert len(Entry.objects.filter(user_id=1, price=Decimal("0"))[:3]) == 3  # 3 examined
    with pytest.raises(schemaless.IndexRequired, match=r"examined 5 entities.*entry_user_pub"):
        list(Entry.objects.filter(user_id=1, price=Decimal("1")))


def test_order_by_pk_and_unindexed_orders_sort_in_memory() -> None:
    entries = make()
    assert [e.pk for e in Entry.objects.order_by("pk")] == sorted(e.pk for e in entries)
    assert Entry.objects.first().pk == min(e.pk for e in entries)  # first() orders by pk
    assert titles(Entry.objects.filter(user_id=1).order_by("-rank")) == ["t7", "t4", "t1"]


def test_values_values_list_and_distinct() -> None:
    make()
    ranks = Entry.objects.filter(user_id=1).order_by("published").values_list("rank", flat=True)
    assert list(ranks) == [1, 4, 7]
    rows = list(Entry.objects.filter(user_id=2).order_by("published").values("title", "user_id"))
    assert rows == [{"title": t, "user_id": 2} for t in ("t2", "t5", "t8")]
    users = Entry.objects.filter(user_id__in=[0, 1, 2]).values_list("user_id", flat=True)
    assert sorted(users.distinct()) == [0, 1, 2]
    assert users.distinct().count() == 3


def test_save_updates_and_unknown_properties_survive() -> None:
    e = Entry.objects.create(user_id=1, title="a")
    store = connections["entities"].store
    stored = store.get(e.pk)
    store.put("shop_entry", {**stored.body, "legacy": "kept"}, id=e.pk)
    e = Entry.objects.get(pk=e.pk)
    e.title = "b"
    e.save()
    assert e.version == 3
    assert store.get(e.pk).body["legacy"] == "kept"
    assert Entry.objects.get(pk=e.pk).title == "b"
    e.refresh_from_db()
    assert e.version == 3


def test_save_is_last_write_wins_and_compare_and_set_is_explicit() -> None:
    e = Entry.objects.create(user_id=1, title="a")
    first, second = Entry.objects.get(pk=e.pk), Entry.objects.get(pk=e.pk)
    first.title = "first"
    first.save()
    second.title = "second"
    second.save()  # Django: the last write wins
    assert Entry.objects.get(pk=e.pk).title == "second"
    stale = first
    stale.title = "stale"
    with pytest.raises(schemaless.Conflict):
        stale.save(expect_version=stale.version)
    fresh = Entry.objects.get(pk=e.pk)
    fresh.title = "fresh"
    fresh.save(expect_version=fresh.version)
    assert fresh.version == 4


def test_queryset_update_and_delete_return_djangos_counts() -> None:
    make()
    assert Entry.objects.filter(user_id=1).update(title="x") == 3
    assert Entry.objects.filter(title="x").count() == 3
    assert Entry.objects.filter(user_id=1).delete() == (3, {"shop.Entry": 3})
    assert Entry.objects.count() == 6
    e = Entry.objects.filter(user_id=0).first()
    assert e.delete() == (1, {"shop.Entry": 1})
    assert Entry.objects.count() == 5


def test_bulk_update_writes_each_objects_values_and_keeps_the_rest() -> None:
    from django.db import IntegrityError
    from django.db.models import Case, F, Value, When

    made = make(6)
    store = connections["entities"].store
    stored = store.get(made[0].pk)
    store.put("shop_entry", {**stored.body, "note": "kept"}, id=made[0].pk)  # unknown to Django
    for e in made:
        e.rank, e.title = e.rank * 10, f"u{e.title}"
    assert Entry.objects.bulk_update(made, ["rank", "title"], batch_size=4) == 6
    assert sorted((e.title, e.rank) for e in Entry.objects.all()) == [
        (f"ut{i}", i * 10) for i in range(6)
    ]
    assert store.get(made[0].pk).body["note"] == "kept"
    made[3].title = None  # NOT NULL: nothing of the bulk_update is written
    made[2].rank = -1
    with pytest.raises(IntegrityError):
        Entry.objects.bulk_update(made, ["rank", "title"])
    assert Entry.objects.get(pk=made[2].pk).rank == 20
    default = Case(When(pk=made[0].pk, then=Value(7)), default=Value(8))  # as SQL: else-branch
    assert Entry.objects.filter(user_id=0).update(rank=default) == 2
    assert sorted(Entry.objects.filter(user_id=0).values_list("rank", flat=True)) == [7, 8]
    with pytest.raises(NotSupportedError):
        Entry.objects.filter(user_id=0).update(rank=Case(When(rank=7, then=Value(1))))
    with pytest.raises(NotSupportedError):  # computed: +, - and * only
        Entry.objects.filter(user_id=0).update(rank=F("rank") / 2)


def test_dates_and_datetimes_truncate_in_the_current_time_zone() -> None:
    from django.utils import timezone

    late = dt.datetime(2024, 3, 31, 23, 30, tzinfo=dt.timezone.utc)  # already April in Tokyo
    for when in (late, late - dt.timedelta(days=70), late + dt.timedelta(hours=1, minutes=5)):
        Entry.objects.create(user_id=1, title="d", published=when)
    mine = Entry.objects.filter(user_id=1)
    months = [dt.date(2024, 1, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1)]
    assert list(mine.dates("published", "month")) == months
    assert list(mine.dates("published", "year", order="DESC")) == [dt.date(2024, 1, 1)]
    assert list(mine.dates("published", "week"))[0] == dt.date(2024, 1, 15)  # a Monday
    quarters = mine.annotate(q=TruncQuarter("published")).order_by("-q").values_list("q", flat=True)
    assert [q.date() for q in quarters] == [
        dt.date(2024, 4, 1),
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 1),
    ]
    days = mine.annotate(d=TruncDate("published"), t=TruncTime("published")).order_by("d")
    assert [(r.d, r.t) for r in days][-1] == (dt.date(2024, 4, 1), dt.time(0, 35))
    with timezone.override("Asia/Tokyo"):
        tokyo = list(mine.datetimes("published", "day"))
        assert [d.date() for d in tokyo] == [dt.date(2024, 1, 22), dt.date(2024, 4, 1)]
        assert str(tokyo[0].tzinfo) == "Asia/Tokyo"
        assert list(mine.dates("published", "month"))[-1] == dt.date(2024, 4, 1)
    hours = list(mine.datetimes("published", "hour", order="DESC"))
    assert hours[:2] == [late.replace(day=1, month=4, hour=0, minute=0), late.replace(minute=0)]


def test_min_and_max_read_one_entity_through_an_index_that_orders() -> None:
    make()
    mine = Entry.objects.filter(user_id=1)  # ranks 1, 4, 7: (user_id, -published) orders times
    got = mine.aggregate(first=Min("published"), last=Max("published"), n=Count("pk"))
    assert got == {
        "first": T0 + dt.timedelta(minutes=1),
        "last": T0 + dt.timedelta(minutes=7),
        "n": 3,
    }
    assert Entry.objects.aggregate(low=Min("rank"), high=Max("rank")) == {"low": 0, "high": 8}
    assert Entry.objects.filter(user_id=9).aggregate(Max("published")) == {"published__max": None}
    with pytest.raises(NotSupportedError, match="index that orders by rank"):
        mine.aggregate(Max("rank"))  # the index that drives user_id orders by published


def test_an_or_on_one_field_is_one_in_and_others_stay_residual() -> None:
    make()
    either = Entry.objects.filter(Q(user_id=1) | Q(user_id__in=[2])).order_by("published")
    assert titles(either) == ["t1", "t2", "t4", "t5", "t7", "t8"]
    a, b = Entry.objects.filter(user_id=0).order_by("published")[:2]
    assert titles(Entry.objects.filter(Q(pk=a.pk) | Q(pk=b.pk)).order_by("title")) == ["t0", "t3"]
    across = Entry.objects.filter(Q(user_id=1) | Q(rank=2) | Q(rank=5)).order_by("-published")
    assert titles(across) == ["t7", "t5", "t4", "t2", "t1"]  # a union: one query per branch
    assert across.count() == 5 and titles(across[1:3]) == ["t5", "t4"]
    assert titles(Entry.objects.filter(Q(user_id=1) | Q(rank=2), rank__gte=4)) == ["t4", "t7"]
    with pytest.raises(FieldError):  # IndexRequired: no index drives the price branch
        list(Entry.objects.filter(Q(user_id=1) | Q(price=2)))


@pytest.mark.parametrize("store_options", [{"MAX_EXAMINED": 3}])
def test_a_union_reads_at_most_max_examined_entities() -> None:
    make()
    assert titles(Entry.objects.filter(Q(rank=1) | Q(rank=2))) in (["t1", "t2"], ["t2", "t1"])
    with pytest.raises(schemaless.IndexRequired, match="MAX_EXAMINED"):
        list(Entry.objects.filter(Q(user_id=1) | Q(rank=2)))  # 3 + 1 entities
    assert Entry.objects.count() == 9  # rows: counted without reading entities
    assert Entry.objects.filter(user_id=1).aggregate(n=Count("rank")) == {"n": 3}
    with pytest.raises(schemaless.IndexRequired, match="MAX_EXAMINED"):
        Entry.objects.aggregate(Count("rank"))  # values: read from the entities, 9 > 3


def test_list_field_matches_any_element() -> None:
    Entry.objects.create(user_id=1, title="a", tags=["red", "blue"])
    Entry.objects.create(user_id=1, title="b", tags=["green"])
    assert titles(Entry.objects.filter(tags="red")) == ["a"]
    assert sorted(titles(Entry.objects.filter(tags__in=["blue", "green"]))) == ["a", "b"]


def test_isnull_and_exclude() -> None:
    Entry.objects.create(user_id=1, title="a", rank=None)
    Entry.objects.create(user_id=1, title="b", rank=2)
    assert titles(Entry.objects.filter(rank__isnull=True)) == ["a"]
    assert titles(Entry.objects.filter(user_id=1, rank__isnull=False)) == ["b"]
    assert titles(Entry.objects.filter(user_id=1).exclude(rank=2)) == ["a"]


def test_field_rules_are_djangos() -> None:
    from django.db import DataError, IntegrityError

    with pytest.raises(IntegrityError):
        Entry.objects.create(user_id=None, title="a")
    e = Entry.objects.create(user_id=1, title="a", price=Decimal("1.005"))
    assert Entry.objects.get(pk=e.pk).price == Decimal("1.00")
    with pytest.raises(DataError):
        Entry.objects.create(user_id=2**63, title="a")


def test_what_the_store_cannot_serve_raises_not_supported() -> None:
    make(3)
    with pytest.raises(NotSupportedError):  # a text lookup compares with values
        list(Entry.objects.filter(user_id=1, title__iexact=F("title")))
    with pytest.raises(schemaless.IndexRequired):  # a residual, with nothing to drive it
        list(Entry.objects.filter(title__iexact="T1"))
    with pytest.raises(NotSupportedError):
        Entry.objects.aggregate(Sum("rank"))
    with pytest.raises(NotSupportedError):
        list(Entry.objects.filter(user_id=1).annotate(n=Count("tags")))
    with pytest.raises(NotSupportedError):  # a time of day: no transform but a date's parts
        list(Entry.objects.filter(user_id=1, published__time=dt.time(12)))
    with pytest.raises(NotSupportedError, match="explain"):
        Entry.objects.filter(user_id=1).explain()


def test_times_of_day_and_durations_round_trip_and_filter_as_residuals() -> None:
    made = [
        Slot.objects.create(
            starts=dt.time(9, 30, 0, 250), lasts=dt.timedelta(hours=1, microseconds=3)
        ),
        Slot.objects.create(starts="14:00", lasts=None),
    ]
    loaded = Slot.objects.get(pk=made[0].pk)
    assert (loaded.starts, loaded.lasts) == (
        dt.time(9, 30, 0, 250),
        dt.timedelta(hours=1, microseconds=3),
    )
    assert Slot.objects.get(pk=made[1].pk).starts == dt.time(14, 0)
    with pytest.raises(schemaless.IndexRequired):  # no index can hold either field
        list(Slot.objects.filter(starts__gte=dt.time(12, 0)))


def test_year_and_date_lookups_are_ranges_of_the_field_that_an_index_drives() -> None:
    from django.utils import timezone

    from schemaless.django.backends.where import Filter

    with timezone.override("Asia/Tokyo"):
        qs = Entry.objects.filter(published__year=2024, published__date__gte=dt.date(2024, 3, 1))
        made = Filter.of(qs.query.where, Entry, None)
    found = sorted(((c.field, c.lookup, c.value) for c in made.conditions), key=lambda c: c[1])
    tokyo = dt.timezone(dt.timedelta(hours=9))
    start, march = dt.datetime(2024, 1, 1, tzinfo=tokyo), dt.datetime(2024, 3, 1, tzinfo=tokyo)
    end = dt.datetime(2025, 1, 1, tzinfo=tokyo) - dt.timedelta(microseconds=1)
    assert found == [("published", "gte", march), ("published", "range", (start, end))]
    assert made.tests == []  # nothing left to check in Python
    excluded = Filter.of(Entry.objects.exclude(rank=None).query.where, Entry, None)
    assert [(c.field, c.lookup) for c in excluded.conditions] == [("rank", "isnull")]
    assert excluded.tests == []  # NOT (rank IS NULL) is rank IS NOT NULL, index-driven
    month = Filter.of(Entry.objects.filter(published__month=3).query.where, Entry, None)
    assert month.conditions == [] and len(month.tests) == 1  # a part of a date: residual


def _in_threads(threads: int, times: int, work: Any) -> None:
    """``work()`` ``times`` times in each of ``threads`` threads started together, each on its
    own connections; the first error of any thread is raised here."""
    import threading

    from django.db import connections as per_thread

    start, failures = threading.Barrier(threads), []

    def run() -> None:
        try:
            start.wait()
            for _ in range(times):
                work()
        except Exception as exc:  # noqa: BLE001 - raised below, in the test's thread
            failures.append(exc)
        finally:
            per_thread.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def test_concurrent_increments_through_f_all_count(entities: str, backend: str) -> None:
    """``update(rank=F("rank") + 1)`` from several threads (each its own connection): every
    increment counts, as SQL's row locks make it; a lost race is computed again on the newer
    body, never written over it, and re-checks the filter on it, as SQL's UPDATE re-checks its
    WHERE on the row it locks: a capped counter stops at its cap."""
    counter = Entry.objects.create(user_id=1, title="likes", rank=0)
    one = Entry.objects.filter(pk=counter.pk)

    def bump() -> None:
        assert one.update(rank=F("rank") + 1) == 1

    _in_threads(4, 15, bump)
    counter.refresh_from_db()
    assert (counter.rank, counter.version) == (60, 61)
    _in_threads(4, 15, lambda: one.filter(rank__lt=70).update(rank=F("rank") + 1))
    counter.refresh_from_db()
    assert counter.rank == 70


def test_bulk_create_ignoring_conflicts_skips_the_ids_taken() -> None:
    """As SQL's INSERT IGNORE: a live entity's id is skipped (its body kept), a deleted one's
    is created again, the others are created; update_conflicts has no unique key to go by."""
    kept = Entry.objects.create(user_id=1, title="kept")
    gone = Entry.objects.create(user_id=1, title="gone")
    gone_pk = gone.pk
    gone.delete()
    batch = [
        Entry(pk=kept.pk, user_id=1, title="clash"),
        Entry(pk=gone_pk, user_id=1, title="back"),
        Entry(user_id=1, title="new"),
    ]
    Entry.objects.bulk_create(batch, ignore_conflicts=True)
    assert sorted(Entry.objects.filter(user_id=1).values_list("title", flat=True)) == [
        "back",
        "kept",
        "new",
    ]
    with pytest.raises(IntegrityError):  # without it, as before: nothing written
        Entry.objects.bulk_create([Entry(user_id=1, title="x"), Entry(pk=kept.pk, user_id=1)])
    assert Entry.objects.filter(user_id=1).count() == 3
    with pytest.raises(NotSupportedError):
        Entry.objects.bulk_create(
            [Entry(user_id=1, title="y")],
            update_conflicts=True,
            update_fields=["title"],
            unique_fields=["id"],
        )


def test_a_list_field_contains_every_element_given_or_a_text_in_one() -> None:
    """``tags__contains=[...]``: every element given is in the list (the meaning of Django's
    ArrayField), driven by the tags index; ``tags__contains="re"``: an element holds "re"."""
    Entry.objects.create(user_id=1, title="a", tags=["red", "blue"])
    Entry.objects.create(user_id=1, title="b", tags=["green"])
    Entry.objects.create(user_id=2, title="c", tags=[])

    def titles(*q: Any, **lookup: Any) -> list[str]:
        return sorted(Entry.objects.filter(*q, **lookup).values_list("title", flat=True))

    assert titles(tags__contains=["red"]) == ["a"]
    assert titles(tags__contains=["blue", "red"]) == ["a"]
    assert titles(tags__contains=["red", "green"]) == []
    assert titles(tags__contains=[]) == ["a", "b", "c"]
    assert titles(user_id=1, tags__contains="re") == ["a", "b"]
    assert titles(user_id=1, tags__icontains="BLU") == ["a"]
    assert titles(Q(tags__contains=["green"]) | Q(title="c")) == ["b", "c"]
