"""QuerySets: Django's API answered through the store's indexes, or refused, never scanned."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import FieldError
from django.db import NotSupportedError
from django.db.models import Count, F, Q

import schemaless
from schemaless import Index
from tests.django.blog.models import Author, Entry, Note
from tests.django.conftest import drain

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def minutes(n: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


@pytest.fixture
def entries(databases: schemaless.Store) -> list[Entry]:
    """Twelve entries of user 7 (t00..t11, a minute apart) and three of user 8, indexed."""
    made = [
        Entry.objects.create(user_id=7, title=f"t{i:02}", published=minutes(i), tags=[f"g{i % 3}"])
        for i in range(12)
    ]
    made += [Entry.objects.create(user_id=8, title=f"u{i}", published=minutes(i)) for i in range(3)]
    drain()
    return made


def titles(queryset: object) -> list[str]:
    return [e.title for e in queryset]  # type: ignore[attr-defined]


def test_filter_order_and_slice_go_through_the_index(entries: list[Entry]) -> None:
    qs = Entry.objects.filter(user_id=7).order_by("-published")
    assert titles(qs[:3]) == ["t11", "t10", "t09"]
    assert titles(qs[3:5]) == ["t08", "t07"]
    assert qs[4].title == "t07"
    assert titles(qs.filter(published__gte=minutes(10))) == ["t11", "t10"]
    assert titles(Entry.objects.filter(user_id=7, published__range=(minutes(1), minutes(2)))) == [
        "t01",
        "t02",
    ]
    assert qs.count() == 12 and len(qs) == 12 and qs.exists()
    assert titles(qs[:3][1:]) == ["t10", "t09"] and list(qs[:5:2]) == [qs[0], qs[2], qs[4]]
    assert Entry.objects.filter(tags="g1").count() == 4


def test_the_result_cache_makes_a_queryset_evaluate_once(entries: list[Entry]) -> None:
    qs = Entry.objects.filter(user_id=8)
    assert qs._result_cache is None
    assert len(qs) == 3 and bool(qs)
    cached = qs._result_cache
    assert list(qs) == cached and qs[0] is cached[0] and qs.count() == 3  # type: ignore[index]
    assert repr(Author.objects.none()) == "<QuerySet []>"


def test_sync_indexing_needs_no_indexer(sync_databases: schemaless.Store) -> None:
    Entry.objects.create(user_id=1, title="now", published=T0)
    assert titles(Entry.objects.filter(user_id=1)) == ["now"]
    assert sync_databases.pending_changes() == 0


def test_a_filter_no_index_serves_raises_index_required(entries: list[Entry]) -> None:
    with pytest.raises(schemaless.IndexRequired, match="entry_user_pub"):
        list(Entry.objects.filter(title="t01"))
    with pytest.raises(schemaless.IndexRequired):
        Entry.objects.order_by("title").first()
    with pytest.raises(schemaless.IndexRequired):
        Note.objects.filter(x=1).count()
    qs = Entry.objects.filter(title="t01")  # building a QuerySet runs nothing
    assert qs._result_cache is None


def test_a_building_index_raises_index_not_ready(databases: schemaless.Store) -> None:
    Note.objects.create(x=1)
    assert databases.add_index(Index("note_x", kind="note", fields={"x": "int"})) == "building"
    with pytest.raises(schemaless.IndexNotReady):
        list(Note.objects.filter(x=1))


def test_joins_aggregates_and_friends_raise_not_supported(entries: list[Entry]) -> None:
    refused = [
        lambda: Entry.objects.filter(user__name="x"),
        lambda: Entry.objects.filter(title__icontains="t"),
        lambda: Entry.objects.filter(published__year=2026),
        lambda: Entry.objects.filter(Q(user_id=7) | Q(title="x")),
        lambda: Entry.objects.filter(rating__isnull=False),
        lambda: Entry.objects.filter(pk__gt=entries[0].pk),
        lambda: Entry.objects.aggregate(Count("id")),
        lambda: Entry.objects.annotate(n=Count("id")),
        lambda: Entry.objects.select_related("user"),
        lambda: Entry.objects.prefetch_related("user"),
        lambda: Entry.objects.distinct("title"),
        lambda: Entry.objects.raw("SELECT 1"),
        lambda: Entry.objects.only("title"),
        lambda: Entry.objects.order_by("?"),
        lambda: Entry.objects.order_by("pk"),
        lambda: Entry.objects.order_by("user__name"),
        lambda: Entry.objects.values("user__name"),
        lambda: Entry.objects.filter(tags=["a", "b"]),
        lambda: Entry.objects.filter(user_id=7).update(user_id=F("user_id") + 1),
        lambda: Entry.objects.all().last(),
        lambda: Entry.objects.union(Entry.objects.all()),
    ]
    for attempt in refused:
        with pytest.raises(NotSupportedError):
            attempt()
    with pytest.raises(FieldError, match="Choices are"):
        Entry.objects.filter(nope=1)


def test_q_objects_and_exclude(entries: list[Entry]) -> None:
    by_user = Entry.objects.filter(Q(user_id=7) & Q(published__lt=minutes(3))).order_by("published")
    assert titles(by_user) == ["t00", "t01", "t02"]
    either = Entry.objects.filter(Q(tags="g0") | Q(tags="g1")).order_by("tags")
    assert len(either) == 8
    assert titles(by_user.exclude(title="t01")) == ["t00", "t02"]
    assert titles(Entry.objects.filter(~Q(title="t00"), user_id=7, published__lt=minutes(2))) == [
        "t01"
    ]
    assert Entry.objects.filter(user_id=7).exclude(tags="g0").count() == 8
    assert Entry.objects.filter(user_id=7).exclude().count() == 12
    assert titles(Entry.objects.filter(user_id=8).exclude(title="u1")[1:]) == ["u2"]


def test_pk_lookups_fetch_by_id(entries: list[Entry]) -> None:
    picked = [entries[3], entries[1], entries[12]]
    qs = Entry.objects.filter(pk__in=[e.pk for e in picked])
    assert list(qs) == picked
    assert titles(qs.order_by("-published", "title")) == ["t03", "t01", "u0"]
    assert titles(qs.filter(user_id=7)) == ["t03", "t01"]
    assert titles(qs.filter(tags="g0")) == ["t03"]  # any element of a list, as the index says
    assert titles(qs.exclude(title="t03")) == ["t01", "u0"]
    assert qs.count() == 3 and qs.filter(pk=entries[0].pk).count() == 0
    assert Entry.objects.filter(Q(pk=entries[0].pk) | Q(pk=entries[2].pk)).count() == 2
    assert Entry.objects.get(pk=str(entries[5].pk)).title == "t05"


def test_get_first_last_earliest_latest(entries: list[Entry]) -> None:
    qs = Entry.objects.filter(user_id=7)
    assert qs.order_by("published").first().title == "t00"
    assert qs.order_by("published").last().title == "t11"
    assert qs.last().title == "t11"  # unordered: the reverse of the index's own order
    assert qs.earliest().title == "t00" and qs.latest().title == "t11"
    assert Entry.objects.filter(user_id=9).first() is None
    with pytest.raises(
        Entry.MultipleObjectsReturned, match="more than one Entry -- it returned 12"
    ):
        qs.get()
    with pytest.raises(Entry.DoesNotExist, match="Entry matching query does not exist."):
        qs.get(published=minutes(99))
    assert qs.get(published=minutes(4)).title == "t04"


def test_values_and_values_list(entries: list[Entry]) -> None:
    qs = Entry.objects.filter(user_id=8).order_by("published")
    assert list(qs.values("title", "user_id")[:1]) == [{"title": "u0", "user_id": 8}]
    assert list(qs.values_list("title", flat=True)) == ["u0", "u1", "u2"]
    assert list(qs.values_list("title", "user_id")[:1]) == [("u0", 8)]
    row = qs.values_list("pk", "title", named=True)[0]
    assert (row.pk, row.title) == (entries[12].pk, "u0")
    assert set(qs.values()[0]) == {f.name for f in Entry._meta.fields}
    with pytest.raises(TypeError):
        qs.values_list("title", "user_id", flat=True)
    with pytest.raises(FieldError):
        qs.values("nope")


def test_iterator_streams_in_pages(entries: list[Entry]) -> None:
    qs = Entry.objects.filter(user_id=7).order_by("published")
    assert titles(qs.iterator(chunk_size=5)) == [f"t{i:02}" for i in range(12)]
    assert qs._result_cache is None
    tagged = Entry.objects.filter(tags__in=["g0", "g1", "g2"]).order_by("tags")
    assert len(list(tagged.iterator(chunk_size=2))) == 12
    assert titles(qs.exclude(tags="g0").iterator(chunk_size=3))[:2] == ["t01", "t02"]
    listing = list(Entry.objects.iterator(chunk_size=4))  # no filter: the kind, in insertion order
    assert listing == entries


def test_get_or_create_and_update_or_create(databases: schemaless.Store) -> None:
    Author.objects.create(name="ann", email="a@x")
    drain()
    ann, created = Author.objects.get_or_create(name="ann", defaults={"email": "other"})
    assert not created and ann.email == "a@x"
    bob, created = Author.objects.get_or_create(name="bob", defaults={"email": lambda: "b@x"})
    assert created and bob.email == "b@x"
    drain()
    ann, created = Author.objects.update_or_create(name="ann", defaults={"email": "new@x"})
    assert not created and databases.get(ann.pk)["email"] == "new@x"
    cid, created = Author.objects.update_or_create(
        name="cid", defaults={"email": "u"}, create_defaults={"email": "c"}
    )
    assert created and cid.email == "c"
    with pytest.raises(FieldError, match="Invalid field name"):
        Author.objects.get_or_create(name="dan", defaults={"nope": 1})


def test_bulk_create_and_in_bulk(databases: schemaless.Store) -> None:
    given = Author(name="given")
    given.pk = given_id = uuid.uuid4()
    made = Author.objects.bulk_create(
        [Author(name=f"a{i}") for i in range(5)] + [given], batch_size=2
    )
    assert all(a.pk is not None and not a._state.adding for a in made) and given.pk == given_id
    found = Author.objects.in_bulk([made[0].pk, made[3].pk, given_id])
    assert {a.name for a in found.values()} == {"a0", "a3", "given"} and set(found) == {
        made[0].pk,
        made[3].pk,
        given_id,
    }
    assert Author.objects.in_bulk([]) == {}
    with pytest.raises(schemaless.Conflict):
        Author.objects.bulk_create([Author(id=given_id, name="again")])
    assert Author.objects.bulk_create([Author(id=given_id, name="again")], ignore_conflicts=True)
    drain()
    assert len(Author.objects.in_bulk()) == 6
    with pytest.raises(ValueError, match="unique"):
        Author.objects.in_bulk(["x"], field_name="name")


def test_update_and_delete_each_match(entries: list[Entry], databases: schemaless.Store) -> None:
    assert Entry.objects.filter(user_id=8).update(rating=4.5) == 3
    assert {databases.get(e.pk)["rating"] for e in entries[12:]} == {4.5}
    assert Entry.objects.filter(user_id=7).delete() == (12, {"blog.Entry": 12})
    drain()
    assert Entry.objects.filter(user_id=7).count() == 0
    with pytest.raises(TypeError, match="'limit' or 'offset'"):
        Entry.objects.filter(user_id=8)[:1].delete()


def test_update_rechecks_an_entity_that_changed_meanwhile(
    entries: list[Entry], databases: schemaless.Store
) -> None:
    qs = Entry.objects.filter(user_id=8)
    stale = list(qs)
    databases.put("entry", {**databases.get(stale[0].pk).body, "user_id": 9}, id=stale[0].pk)
    databases.put("entry", {**databases.get(stale[1].pk).body, "rating": 1.0}, id=stale[1].pk)
    qs._result_cache = None
    updated = qs._chain()
    updated._entity_list = lambda: [s._entity for s in stale]  # type: ignore[method-assign]
    assert updated.update(rating=2.0) == 2  # the one no longer of user 8 is left alone
    assert databases.get(stale[0].pk).get("rating") is None
    assert databases.get(stale[1].pk)["rating"] == 2.0


def test_none_contains_and_slicing_rules(entries: list[Entry]) -> None:
    assert list(Entry.objects.none()) == [] and Entry.objects.none().count() == 0
    qs = Entry.objects.filter(user_id=8)
    assert qs.contains(entries[12]) and not qs.contains(entries[0])
    with pytest.raises(TypeError, match="Cannot filter a query once a slice has been taken."):
        qs[:1].filter(title="u0")
    with pytest.raises(TypeError, match="reorder"):
        qs[:1].order_by("published")
    with pytest.raises(ValueError, match="Negative indexing"):
        qs[-1]
    with pytest.raises(IndexError):
        qs.order_by("published")[5]
    assert qs[2:2].count() == 0


def test_custom_managers_and_querysets(entries: list[Entry]) -> None:
    Entry.objects.create(user_id=7, title="draft", status="draft")
    drain()
    assert Entry.objects.by_user(8).count() == 3
    assert Entry.objects.by_user(8).filter(published__lt=minutes(1)).get().title == "u0"
    assert Entry.public.filter(user_id=7).count() == 12
    assert (
        Entry._default_manager is Entry.objects
        and repr(Entry.public) == "<PublicManager blog.Entry.public>"
    )
    with pytest.raises(AttributeError):
        Entry.objects.delete()  # as in Django: delete() is a QuerySet method only
