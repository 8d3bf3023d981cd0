"""select_related(): the related entities read by id after the page, one read per relation,
instead of one per row (related.py); what it cannot read so is left to Django's lazy reads."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from feed.models import Comment, Entry, Like

pytestmark = pytest.mark.usefixtures("entities")


def test_related_entries_come_with_their_comments_in_two_reads() -> None:
    entries = [Entry.objects.create(user=f"u{n}", title=f"entry {n}") for n in range(3)]
    for n in range(6):
        Comment.objects.create(entry=entries[n % 3], user=f"c{n}", body=f"body {n}")
    list(Comment.objects.order_by("pk")[:1])  # the store reads its index registry once
    with CaptureQueriesContext(connections["entities"]) as reads:
        comments = list(Comment.objects.select_related("entry").order_by("pk"))
        titles = Counter(c.entry.title for c in comments)  # no read more
    assert len(reads) == 2, [q["sql"] for q in reads]
    assert titles == Counter({"entry 0": 2, "entry 1": 2, "entry 2": 2})
    assert all(c.entry.pk == c.entry_id for c in comments)
    assert all(c.entry._state.db == "entities" for c in comments)  # saved back where it came from


def test_the_related_object_is_the_stored_one_field_for_field() -> None:
    entry = Entry.objects.create(user="ann", title="t", tags=["db", "py"])
    made = Like.objects.create(entry=entry, user="bob")
    like = Like.objects.select_related("entry").get(pk=made.pk)
    stored = Entry.objects.get(pk=entry.pk)
    assert (like.entry.user, like.entry.title, like.entry.tags) == ("ann", "t", ["db", "py"])
    assert like.entry.published == stored.published
    like.entry.title = "changed"  # a real instance: it saves
    like.entry.save()
    assert Entry.objects.get(pk=entry.pk).title == "changed"


def test_select_related_with_no_names_follows_every_foreign_key() -> None:
    entries = [Entry.objects.create(user="ann", title=f"t{n}") for n in range(3)]
    for entry in entries:
        Like.objects.create(entry=entry, user="bob")
    list(Like.objects.filter(entry__in=entries))  # the store reads its index registry once
    with CaptureQueriesContext(connections["entities"]) as reads:
        likes = Like.objects.select_related().filter(entry__in=entries)
        assert sorted(like.entry.title for like in likes) == ["t0", "t1", "t2"]
    assert len(reads) == 2


def test_a_row_whose_entry_is_gone_is_left_out_as_an_inner_join_leaves_it() -> None:
    kept = Entry.objects.create(user="ann", title="kept")
    Like.objects.create(entry=kept, user="bob")
    gone = uuid.uuid4()
    Like.objects.create(entry_id=gone, user="bob")  # no such entry: nothing enforces it
    likes = list(Like.objects.select_related("entry").filter(entry__in=[kept.pk, gone]))
    assert [like.entry.title for like in likes] == ["kept"]
    assert Like.objects.filter(entry__in=[kept.pk, gone]).count() == 2  # without the join, both


def test_filters_and_orders_across_the_relation_still_raise() -> None:
    from django.db import NotSupportedError

    with pytest.raises(NotSupportedError, match="join"):
        list(Like.objects.select_related("entry").filter(entry__title="x"))
    with pytest.raises(NotSupportedError, match="across models"):
        list(Like.objects.select_related("entry").filter(entry=1).order_by("entry__title"))


def test_counts_and_values_ignore_select_related() -> None:
    entry = Entry.objects.create(user="ann", title="t")
    Like.objects.create(entry=entry, user="bob")
    related = Like.objects.select_related("entry").filter(entry=entry)
    assert related.count() == 1
    rows = list(related.values_list("user"))
    assert rows == [("bob",)]


def test_prefetch_related_is_djangos_one_in_query_per_relation() -> None:
    entries = [Entry.objects.create(user="ann", title=f"t{n}") for n in range(3)]
    for n in range(5):
        Like.objects.create(entry=entries[n % 2], user=f"u{n}")
    list(Like.objects.filter(entry__in=entries))  # the store reads its index registry once
    with CaptureQueriesContext(connections["entities"]) as reads:
        found = Entry.objects.filter(pk__in=[e.pk for e in entries]).prefetch_related("likes")
        likes = {e.title: sorted(like.user for like in e.likes.all()) for e in found}
    assert likes == {"t0": ["u0", "u2", "u4"], "t1": ["u1", "u3"], "t2": []}
    assert len(reads) == 2


def test_nullable_keys_two_levels_deep_join_left_outer() -> None:
    import datetime as dt

    from tests.django.shop.models import Book, Shelf, Slot

    room = Slot.objects.create(starts=dt.time(9))
    shelves = [Shelf.objects.create(label="a", room=room), Shelf.objects.create(label="b")]
    Book.objects.create(title="roomy", shelf=shelves[0])
    Book.objects.create(title="roomless", shelf=shelves[1])
    Book.objects.create(title="shelfless")
    Book.objects.create(title="gone", shelf_id=uuid.uuid4())  # a shelf that is not stored
    titles = ["roomy", "roomless", "shelfless", "gone"]
    list(Book.objects.filter(title__in=titles))  # the store reads its index registry once
    with CaptureQueriesContext(connections["entities"]) as reads:
        books = {
            b.title: b for b in Book.objects.filter(title__in=titles).select_related("shelf__room")
        }
        assert len(books) == 4  # LEFT OUTER joins: no book is left out
        assert books["roomy"].shelf.label == "a" and books["roomy"].shelf.room.starts == dt.time(9)
        assert books["roomless"].shelf.label == "b" and books["roomless"].shelf.room is None
        assert books["shelfless"].shelf is None
        assert books["gone"].shelf is None and books["gone"].shelf_id is not None  # as SQL's
    assert len(reads) == 3  # the books, their shelves, the shelves' rooms


def test_an_in_takes_a_queryset_of_the_same_database_read_first() -> None:
    from django.db import NotSupportedError

    anns = [Entry.objects.create(user="ann", title=f"a{n}") for n in range(2)]
    bob = Entry.objects.create(user="bob", title="b")
    for entry in [*anns, bob]:
        Comment.objects.create(entry=entry, user="cy", body=entry.title)
    of_ann = Comment.objects.filter(entry__in=Entry.objects.filter(user="ann"))
    assert sorted(c.body for c in of_ann) == ["a0", "a1"]
    pks = Entry.objects.filter(user="bob").values("pk")
    assert [e.title for e in Entry.objects.filter(pk__in=pks)] == ["b"]
    assert not Comment.objects.filter(entry__in=Entry.objects.none()).exists()
    with pytest.raises(NotSupportedError, match="same schemaless database"):
        list(Comment.objects.filter(entry__in=Entry.objects.using("default").all()))


def test_a_foreign_key_is_indexed_by_itself_so_relations_and_deletes_are_served() -> None:
    """As a plain table indexes its ForeignKey: ``shelf.book_set``, ``filter(shelf=s)`` and
    the SET_NULL that deleting a shelf makes Django run on its books need no Meta index."""
    import datetime as dt

    from tests.django.shop.models import Book, Shelf, Slot

    room = Slot.objects.create(starts=dt.time(9))
    shelf, other = (Shelf.objects.create(label=label, room=room) for label in "ab")
    books = [Book.objects.create(title=f"b{n}", shelf=shelf if n < 2 else other) for n in range(3)]
    assert sorted(b.title for b in shelf.book_set.all()) == ["b0", "b1"]
    assert Book.objects.filter(shelf=other).count() == 1
    registered = {ix.name: ix for ix, _ in connections["entities"].store.indexes()}
    by_key = [
        ix for ix in registered.values() if ix.kind == "shop_book" and "shelf_id" in ix.fields
    ]
    assert [(ix.fields, ix.name.startswith("shop_book_shelf_id_")) for ix in by_key] == [
        ({"shelf_id": "uuid"}, True)
    ]
    shelf.delete()  # Django's collector: UPDATE books SET shelf=NULL WHERE shelf IN (...)
    assert sorted(Book.objects.filter(shelf=None).values_list("title", flat=True)) == ["b0", "b1"]
    room.delete()  # and the shelves of a room
    assert Shelf.objects.get(pk=other.pk).room_id is None
    assert Book.objects.get(pk=books[2].pk).shelf_id == other.pk
