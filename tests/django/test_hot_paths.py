"""The hot paths on a Django connection (``CursorPath`` on MySQL), with async indexing as a
production alias has it: what they write and raise is what the general path writes and raises."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext

from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")


@pytest.fixture
def store_options() -> dict[str, Any]:
    return {"INDEXING": "async"}  # the fast writes serve async indexing only


def test_a_save_of_a_loaded_instance_does_not_read_the_entity_again() -> None:
    loaded = Entry.objects.get(pk=Entry.objects.create(user_id=1, title="a").pk)
    loaded.title = "b"
    with CaptureQueriesContext(connections["entities"]) as captured:
        loaded.save()
    reads = [q["sql"] for q in captured if "entities.id in (" in q["sql"].lower()]
    assert reads == []
    assert (loaded.version, Entry.objects.get(pk=loaded.pk).title) == (2, "b")


def test_a_stale_loaded_instance_still_saves_over_the_newer_version() -> None:
    created = Entry.objects.create(user_id=1, title="a")
    stale = Entry.objects.get(pk=created.pk)
    Entry.objects.filter(pk=created.pk).update(rank=7)
    stale.title = "b"
    stale.save()
    fresh = Entry.objects.get(pk=created.pk)
    assert (fresh.title, fresh.rank, fresh.version, stale.version) == ("b", None, 3, 3)


def test_a_loaded_instance_saved_twice_writes_two_versions() -> None:
    loaded = Entry.objects.get(pk=Entry.objects.create(user_id=1, title="a").pk)
    for title in ("b", "c"):
        loaded.title = title
        loaded.save()
    fresh = Entry.objects.get(pk=loaded.pk)
    assert (fresh.title, fresh.version, loaded.version) == ("c", 3, 3)


def test_a_create_with_a_taken_id_raises_integrity_error() -> None:
    created = Entry.objects.create(user_id=1, title="a")
    with pytest.raises(IntegrityError):
        Entry.objects.create(id=created.pk, user_id=2, title="b")
    assert Entry.objects.get(pk=created.pk).title == "a"


def test_writes_in_an_atomic_block_rolled_back_are_undone() -> None:
    kept = Entry.objects.create(user_id=1, title="kept")
    with pytest.raises(RuntimeError), transaction.atomic(using="entities"):
        gone = Entry.objects.create(user_id=1, title="gone")
        kept.title = "changed"
        kept.save()
        raise RuntimeError
    assert not Entry.objects.filter(pk=gone.pk).exists()
    assert Entry.objects.get(pk=kept.pk).title == "kept"
