"""Model instances: create, read, save (compare-and-set), delete, values in and out of the body."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import (
    FieldError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    ValidationError,
)
from django.db import NotSupportedError
from django.test.utils import override_settings

import schemaless
from schemaless.django import models as sl
from tests.django.blog.models import Author, Entry, Note

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_create_get_save_delete_round_trip(databases: schemaless.Store) -> None:
    entry = Entry(user_id=7, title="hi", tags=["a"], published=T0)
    assert entry.pk is None and entry._state.adding
    entry.save()
    assert isinstance(entry.pk, uuid.UUID) and entry.id == entry.pk and not entry._state.adding
    loaded = Entry.objects.get(pk=entry.pk)
    assert (loaded.user_id, loaded.title, loaded.tags, loaded.published) == (7, "hi", ["a"], T0)
    loaded.title = "hello"
    loaded.save()
    assert databases.get(entry.pk)["title"] == "hello"
    assert databases.get(entry.pk).version == 2
    assert loaded.delete() == (1, {"blog.Entry": 1})
    assert loaded.pk is None
    with pytest.raises(Entry.DoesNotExist):
        Entry.objects.get(pk=entry.pk)


def test_a_concurrent_change_makes_save_raise_conflict(databases: schemaless.Store) -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    first, second = Entry.objects.get(pk=entry.pk), Entry.objects.get(pk=entry.pk)
    first.title = "first"
    first.save()
    second.title = "second"
    with pytest.raises(schemaless.Conflict):
        second.save()
    second.refresh_from_db()
    assert second.title == "first"
    second.title = "second"
    second.save()
    assert databases.get(entry.pk)["title"] == "second"


def test_a_new_instance_never_overwrites_an_existing_id(databases: schemaless.Store) -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    with pytest.raises(schemaless.Conflict):
        Entry(id=entry.pk, user_id=2, title="b").save()
    assert databases.get(entry.pk)["title"] == "a"


def test_unknown_stored_properties_survive_a_load_and_save(databases: schemaless.Store) -> None:
    stored = databases.put("entry", {"user_id": 3, "title": "old", "legacy": {"x": [1, 2]}})
    entry = Entry.objects.get(pk=stored.id)
    assert not hasattr(entry, "legacy")
    entry.title = "new"
    entry.save()
    body = databases.get(stored.id).body
    assert body["legacy"] == {"x": [1, 2]} and body["title"] == "new"


def test_fields_missing_from_the_body_take_their_default(databases: schemaless.Store) -> None:
    stored = databases.put("entry", {"user_id": 3, "title": "bare"})
    entry = Entry.objects.get(pk=stored.id)
    assert entry.tags == [] and entry.status == "published" and entry.body == ""
    assert entry.rating is None


def test_values_convert_to_and_from_the_body(databases: schemaless.Store) -> None:
    token = uuid.uuid4()
    author = Author.objects.create(
        name="ann",
        joined=dt.date(2020, 5, 17),
        karma="12.50",
        token=str(token),
        avatar=bytearray(b"\x00\xff"),
        prefs={"theme": "dark"},
        extra=[1, "two"],
    )
    body = databases.get(author.pk).body
    assert body["karma"] == Decimal("12.50") and body["token"] == token
    assert body["joined"] == dt.date(2020, 5, 17) and body["avatar"] == b"\x00\xff"
    loaded = Author.objects.get(pk=author.pk)
    assert (loaded.karma, loaded.token, loaded.joined) == (Decimal("12.50"), token, body["joined"])
    assert (loaded.avatar, loaded.prefs, loaded.extra, loaded.active) == (
        b"\x00\xff",
        {"theme": "dark"},
        [1, "two"],
        True,
    )


def test_datetimes_are_stored_aware_and_read_in_utc(databases: schemaless.Store) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    entry = Entry.objects.create(user_id=1, title="t", published=T0.astimezone(plus_two))
    assert databases.get(entry.pk)["published"] == T0
    loaded = Entry.objects.get(pk=entry.pk)
    assert loaded.published == T0 and loaded.published.utcoffset() == dt.timedelta(0)
    naive = databases.put(
        "entry", {"user_id": 1, "title": "n", "published": dt.datetime(2026, 1, 1)}
    )
    assert Entry.objects.get(pk=naive.id).published == dt.datetime(
        2026, 1, 1, tzinfo=dt.timezone.utc
    )


def test_save_with_update_fields_writes_only_those(databases: schemaless.Store) -> None:
    entry = Entry.objects.create(user_id=1, title="a", body="x")
    entry.title, entry.body = "b", "changed"
    entry.save(update_fields=["title"])
    body = databases.get(entry.pk).body
    assert (body["title"], body["body"]) == ("b", "x")
    with pytest.raises(ValueError, match="do not exist"):
        entry.save(update_fields=["nope"])


def test_refresh_from_db_and_the_exception_classes(databases: schemaless.Store) -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    databases.put("entry", {"user_id": 1, "title": "changed"}, id=entry.pk)
    entry.refresh_from_db(fields=["title"])
    assert entry.title == "changed"
    databases.delete(entry.pk)
    with pytest.raises(Entry.DoesNotExist) as raised:
        entry.refresh_from_db()
    assert isinstance(raised.value, ObjectDoesNotExist) and isinstance(
        raised.value, schemaless.NotFound
    )
    assert Entry.DoesNotExist is not Author.DoesNotExist
    assert issubclass(Entry.MultipleObjectsReturned, MultipleObjectsReturned)


def test_an_id_of_another_kind_is_not_found(databases: schemaless.Store) -> None:
    other = databases.put("author", {"name": "x"})
    with pytest.raises(Entry.DoesNotExist):
        Entry.objects.get(pk=other.id)
    assert Entry(id=other.id, user_id=1, title="t").delete() == (0, {"blog.Entry": 0})
    assert databases.get(other.id)["name"] == "x"


def test_delete_after_a_concurrent_delete_counts_nothing(databases: schemaless.Store) -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    databases.delete(entry.pk)
    assert entry.delete() == (0, {"blog.Entry": 0})


def test_abstract_parents_pass_on_fields_and_auto_now(databases: schemaless.Store) -> None:
    note = Note.objects.create(x=1)
    assert note.created is not None and note.updated is not None
    assert [f.name for f in Note._meta.fields] == ["id", "created", "updated", "x", "text"]
    first = note.updated
    note.save()
    assert note.updated > first and Note.objects.get(pk=note.pk).created == note.created


def test_datetimes_follow_use_tz(databases: schemaless.Store) -> None:
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        entry = Entry.objects.create(user_id=1, title="t", published=dt.datetime(2026, 1, 1))
    assert databases.get(entry.pk)["published"] == T0.replace(hour=0)
    with override_settings(USE_TZ=False):
        local = Entry.objects.create(user_id=1, title="t", published=dt.datetime(2026, 1, 1))
        assert databases.get(local.pk)["published"].tzinfo is None
        assert Entry.objects.get(pk=entry.pk).published == dt.datetime(2026, 1, 1)


def test_full_clean_raises_django_validation_errors() -> None:
    entry = Entry(user_id="seven", title="", status="gone", tags=["x" * 41])
    with pytest.raises(ValidationError) as raised:
        entry.full_clean()
    errors = raised.value.message_dict
    assert set(errors) == {"user_id", "title", "status", "tags"}
    assert errors["title"] == ["This field cannot be blank."]
    assert "Item 1 in the list did not validate" in errors["tags"][0]
    assert "is not a valid choice" in errors["status"][0]
    good = Entry(user_id="7", title="ok")
    good.full_clean()
    assert good.user_id == 7
    with pytest.raises(ValidationError, match="digits"):
        Author(name="a", karma=Decimal("1234567.1")).full_clean()


def test_instances_look_like_djangos() -> None:
    entry = Entry(user_id=1, title="t", status="draft")
    assert repr(entry) == "<Entry: Entry object (None)>"
    assert entry.get_status_display() == "Draft"
    assert entry != Entry(user_id=1, title="t") and entry == entry
    with pytest.raises(TypeError, match="unhashable"):
        hash(entry)
    with pytest.raises(TypeError, match="unexpected keyword arguments: 'nope'"):
        Entry(nope=1)
    with pytest.raises(AttributeError):
        entry.objects  # noqa: B018
    same = uuid.uuid4()
    assert Entry(pk=same) == Entry(id=same) and hash(Entry(pk=same)) == hash(same)


def test_meta_is_enough_for_generic_views() -> None:
    opts = Entry._meta
    assert (opts.app_label, opts.model_name, opts.object_name) == ("blog", "entry", "Entry")
    assert (opts.label, opts.label_lower, opts.kind) == ("blog.Entry", "blog.entry", "entry")
    assert (opts.verbose_name, opts.verbose_name_plural) == ("entry", "entrys")
    assert opts.pk is opts.get_field("id") and opts.pk.primary_key and not opts.pk.editable
    assert opts.concrete_model is Entry and opts.get_fields() == opts.fields
    assert Author._meta.kind == "author" and Entry._default_manager is Entry.objects
    with pytest.raises(Exception, match="no field named 'nope'"):
        opts.get_field("nope")


def test_what_a_table_would_enforce_is_refused() -> None:
    with pytest.raises(NotSupportedError):
        sl.CharField(max_length=10, unique=True)
    with pytest.raises(NotSupportedError):

        class Tabled(sl.Model):
            class Meta:
                app_label = "broken"
                db_table = "x"

    with pytest.raises(NotSupportedError, match="multi-table"):

        class Child(Entry):
            class Meta:
                app_label = "broken"

    with pytest.raises(FieldError, match="reserved"):

        class OwnId(sl.Model):
            id = sl.UUIDField()

            class Meta:
                app_label = "broken"
