"""Django's migrate on a schemaless alias: the fixed tables at the first migrate, the kind and
its indexes at CreateModel, no DDL for fields, AddIndex backfilled online."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connections, models
from django.test.utils import CaptureQueriesContext

from tests.django.shop.models import Entry


def migrate(*target: str) -> None:
    call_command("migrate", *target, database="entities", verbosity=0, stdout=io.StringIO())


def states() -> dict[str, str]:
    """The shop's indexes (the feed app's models live on the alias too)."""
    indexes = connections["entities"].store.indexes()
    return {index.name: state for index, state in indexes if index.kind == "shop_entry"}


def test_migrate_creates_the_fixed_tables_and_the_kinds_indexes(unmigrated: str) -> None:
    migrate()
    tables = connections["entities"].introspection.table_names()
    assert {"entities", "entity_changes", "schemaless_indexes", "django_migrations"} <= set(tables)
    assert "shop_entry" not in tables  # a kind is a name, not a table
    assert states() == dict.fromkeys(
        ["entry_rank", "entry_tags", "entry_title", "entry_user_pub"], "ready"
    )
    migrate()  # again: nothing changes
    assert len(states()) == 4


def test_add_index_backfills_the_entities_stored_before(unmigrated: str) -> None:
    migrate("shop", "0001")
    assert "entry_rank" not in states()
    Entry.objects.bulk_create(Entry(user_id=1, title=f"t{i}", rank=i % 2) for i in range(7))
    migrate("shop", "0002")
    assert states()["entry_rank"] == "ready"
    assert Entry.objects.filter(rank=1).count() == 3
    migrate("shop", "0001")  # RemoveIndex
    assert "entry_rank" not in states()


@pytest.mark.parametrize("store_options", [{"BACKFILL_ON_MIGRATE": False}])
def test_add_index_can_leave_the_backfill_to_the_daemon(unmigrated: str) -> None:
    migrate("shop", "0001")
    Entry.objects.create(user_id=1, title="a", rank=1)
    migrate("shop", "0002")
    assert states()["entry_rank"] == "building"


def test_adding_a_field_runs_no_sql(entities: str) -> None:
    connection = connections[entities]
    field = models.IntegerField(null=True)
    field.set_attributes_from_name("stars")
    with CaptureQueriesContext(connection) as captured, connection.schema_editor() as editor:
        editor.add_field(Entry, field)
        editor.alter_field(Entry, field, field)
        editor.remove_field(Entry, field)
    assert [q["sql"] for q in captured if "stars" in q["sql"]] == []


def test_an_entity_stored_before_a_field_existed_reads_its_default(entities: str) -> None:
    store = connections[entities].store
    old = store.put("shop_entry", {"user_id": 1, "title": "old"})
    e = Entry.objects.get(pk=old.id)
    assert (e.tags, e.extra, e.rank) == ([], {}, None)


def test_an_index_indexes_an_entity_stored_before_its_field_as_the_default(
    entities: str,
) -> None:
    from django.test.utils import isolate_apps

    from schemaless.django import models as sl
    from schemaless.django.backends.schema import store_index

    with isolate_apps("tests.django.shop"):

        class Task(sl.Model):
            title = models.CharField(max_length=20)
            state = models.CharField(max_length=10, default="draft")

            class Meta:
                app_label = "shop"
                db_table = "shop_task"

        index = sl.Index(fields=["state"], name="task_state")
        assert store_index(Task, index).defaults == {"state": "draft"}
        store = connections[entities].store
        old = store.put("shop_task", {"title": "old"})  # stored before "state" existed
        Task.objects.using(entities).create(title="new", state="done")
        with connections[entities].schema_editor() as editor:
            editor.add_index(Task, index)
        found = Task.objects.using(entities).filter(state="draft")
        assert [(t.title, t.state) for t in found] == [("old", "draft")]
        assert Task.objects.using(entities).filter(state="draft").count() == 1
        assert Task.objects.using(entities).get(pk=old.id).state == "draft"


def test_a_field_named_with_a_minus_is_stored_descending_in_the_index_key(
    entities: str,
) -> None:
    registered = {ix.name: ix for ix, _ in connections[entities].store.indexes()}
    assert registered["entry_user_pub"].descending == ("published",)  # ["user_id", "-published"]
    assert registered["entry_user_pub"].fields == {"user_id": "int", "published": "datetime"}


def test_a_field_django_indexes_by_itself_gets_a_store_index_and_loses_it(entities: str) -> None:
    """AddField of a ``db_index=True`` field creates its index (backfilled: an entity stored
    before the field exists is indexed as its default); AlterField to ``db_index=False`` and
    RemoveField drop it; a type no index holds gets none."""
    connection = connections[entities]
    old = Entry.objects.create(user_id=1, title="old")
    code = models.CharField(max_length=10, db_index=True, default="none")
    code.set_attributes_from_name("code")
    plain = models.CharField(max_length=10, default="none")
    plain.set_attributes_from_name("code")
    amount = models.DecimalField(max_digits=5, decimal_places=2, db_index=True, null=True)
    amount.set_attributes_from_name("amount")

    def code_indexes() -> list[tuple[dict[str, str], str]]:
        found = connection.store.indexes()
        return [(ix.fields, state) for ix, state in found if "code" in ix.fields]

    with connection.schema_editor() as editor:
        editor.add_field(Entry, code)
        editor.add_field(Entry, amount)  # DecimalField: no index type, no index
    assert code_indexes() == [({"code": "str"}, "ready")]
    assert [ix for ix, _ in connection.store.indexes() if "amount" in ix.fields] == []
    store_query = connection.store.query("shop_entry").filter(code="none")
    assert [e.id for e in store_query] == [old.pk]  # stored before the field: its default
    with connection.schema_editor() as editor:
        editor.alter_field(Entry, code, plain)
    assert code_indexes() == []
    with connection.schema_editor() as editor:
        editor.alter_field(Entry, plain, code)
    assert code_indexes() == [({"code": "str"}, "ready")]
    with connection.schema_editor() as editor:
        editor.remove_field(Entry, code)
    assert code_indexes() == []
