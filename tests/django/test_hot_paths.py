"""The hot paths on a Django connection (``CursorPath`` on MySQL), with async indexing as a
production alias has it: what they write and raise is what the general path writes and raises."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import MySQLdb
import pytest
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext

import schemaless
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


# In autocommit on MySQL a create and a save of a loaded instance are one multi-statement query
# each (BEGIN to COMMIT): what they do when a statement of it fails or the connection is gone.


def _changes(alias: str = "entities") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM entity_changes")
        return int(cursor.fetchone()[0])


def _in_transaction() -> bool:
    with connections["entities"].cursor() as cursor:
        cursor.execute("SELECT @@in_transaction")
        return bool(cursor.fetchone()[0])


@pytest.fixture
def mysql_entities(backend: str) -> None:
    if backend != "mysql":
        pytest.skip("the multi-statement writes are MySQL's")


@pytest.mark.usefixtures("mysql_entities")
def test_a_create_and_a_save_are_one_query_each_in_autocommit() -> None:
    Entry.objects.create(user_id=1, title="first")  # the store reads its registry once
    with CaptureQueriesContext(connections["entities"]) as created:
        entry = Entry.objects.create(user_id=1, title="a")
    entry.title = "b"
    with CaptureQueriesContext(connections["entities"]) as saved:
        entry.save()
    sent = [q["sql"] for q in created.captured_queries + saved.captured_queries]
    assert [s.split(";")[0] for s in sent] == ["BEGIN", "BEGIN"]
    assert all(s.endswith("COMMIT") for s in sent)
    assert (Entry.objects.get(pk=entry.pk).title, entry.version, _changes()) == ("b", 2, 3)


@pytest.mark.usefixtures("mysql_entities")
def test_a_failed_statement_of_a_write_leaves_no_transaction_open() -> None:
    created = Entry.objects.create(user_id=1, title="a")
    with pytest.raises(IntegrityError):
        Entry.objects.create(id=created.pk, user_id=2, title="b")
    assert not _in_transaction()
    after = Entry.objects.create(user_id=3, title="c")  # committed on its own, not held open
    connections["entities"].close()
    assert Entry.objects.get(pk=after.pk).title == "c"
    assert (Entry.objects.get(pk=created.pk).title, _changes()) == ("a", 2)


@pytest.mark.usefixtures("mysql_entities")
def test_a_write_whose_second_statement_fails_is_rolled_back() -> None:
    Entry.objects.create(user_id=1, title="a")
    fast = connections["entities"].store.shards[0].fast
    new_id = uuid.uuid4().bytes
    row = (new_id, "shop_entry", 1, datetime.datetime(2026, 1, 1), b"\x80")
    steps = (
        (fast._insert_entities, row, False),
        ("INSERT INTO no_such_table VALUES (%s)", (1,), False),
    )
    with pytest.raises(schemaless.ConfigurationError):
        fast._run(False, steps, batchable=True)
    assert not _in_transaction()
    Entry.objects.create(user_id=2, title="b")  # a BEGIN would commit what was left open
    with connections["entities"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM entities WHERE id = %s", (new_id,))
        assert cursor.fetchone()[0] == 0


@pytest.mark.usefixtures("mysql_entities")
def test_a_compare_and_set_save_that_loses_writes_nothing() -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    stale = Entry.objects.get(pk=entry.pk)
    entry.title = "b"
    entry.save()
    stale.title = "lost"
    with pytest.raises(schemaless.Conflict):
        stale.save(expect_version=stale.version)
    assert not _in_transaction()
    assert (Entry.objects.get(pk=entry.pk).title, _changes()) == ("b", 2)


@pytest.mark.usefixtures("mysql_entities")
def test_a_write_on_a_connection_the_server_killed_is_a_typed_error() -> None:
    from django.db import OperationalError

    Entry.objects.create(user_id=1, title="a")  # the connection is open
    with connections["entities"].cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        session = cursor.fetchone()[0]
    params = connections["entities"].get_connection_params()
    admin = MySQLdb.connect(**{k: v for k, v in params.items() if k != "conv"})
    admin.cursor().execute(f"KILL CONNECTION {int(session)}")
    admin.close()
    with pytest.raises(OperationalError) as raised:
        Entry.objects.create(user_id=2, title="b")
    assert isinstance(raised.value.__cause__, schemaless.ShardUnavailable)
    connections["entities"].close()
    assert list(Entry.objects.values_list("title", flat=True)) == ["a"]
