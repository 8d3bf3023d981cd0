"""The schemaless_* management commands, run through call_command as manage.py runs them."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from django.core.management import CommandError, call_command

import schemaless
from schemaless import Index
from tests.django.blog.models import Entry


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_migrate_creates_tables_and_every_models_indexes(databases: schemaless.Store) -> None:
    again = run("schemaless_migrate")  # the fixture ran it once already: idempotent
    assert "migrated 1 shard(s)" in again
    assert "index entry_user_pub (blog.Entry): ready" in again
    assert "index author_name (blog.Author): ready" in again
    names = {index.name for index, state in databases.indexes() if state == "ready"}
    assert names == {
        "entry_user_pub",
        "entry_tags",
        "entry_published",
        "entry_public",
        "author_name",
    }


def test_migrate_backfills_an_index_added_to_a_kind_with_entities(
    databases: schemaless.Store,
) -> None:
    Entry.objects.bulk_create([Entry(user_id=1, title=f"t{i}", tags=["x"]) for i in range(3)])
    databases.drop_index("entry_tags")
    out = run("schemaless_migrate")
    assert "index entry_tags (blog.Entry): building" in out
    assert "index entry_tags: backfilled 3 entities" in out
    run("schemaless_indexer", "--burst")
    assert Entry.objects.filter(tags="x").count() == 3


def test_status_reports_pending_changes_and_indexes(databases: schemaless.Store) -> None:
    Entry.objects.create(user_id=1, title="a")
    text = run("schemaless_status")
    assert "pending changes: 1" in text and "entry_user_pub" in text
    data = json.loads(run("schemaless_status", "--json"))
    assert data["pending_changes"] == 1 and len(data["indexes"]) == 5


def test_indexer_burst_drains_the_log(databases: schemaless.Store) -> None:
    Entry.objects.bulk_create([Entry(user_id=2, title=f"t{i}") for i in range(5)])
    assert "applied 5 changes" in run("schemaless_indexer", "--burst", "--workers", "2")
    assert databases.pending_changes() == 0 and Entry.objects.filter(user_id=2).count() == 5


def test_backfill_builds_a_building_index(databases: schemaless.Store) -> None:
    Entry.objects.create(user_id=1, title="a", rating=2.5)
    databases.add_index(Index("entry_rating", kind="entry", fields={"rating": "float"}))
    assert "backfilled 1 entities" in run("schemaless_backfill", "entry_rating")
    assert dict((i.name, s) for i, s in databases.indexes())["entry_rating"] == "ready"
    with pytest.raises(CommandError) as raised:
        run("schemaless_backfill", "nope")
    assert raised.value.returncode == 2


def test_verify_exits_1_when_an_index_is_wrong_and_repair_fixes_it(
    databases: schemaless.Store,
) -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    run("schemaless_indexer", "--burst")
    assert "clean" in run("schemaless_verify")
    table = databases.registry.table(Entry._meta.core_indexes()[0])
    with databases.shards.engines[0].begin() as conn:
        conn.execute(table.delete().where(table.c.entity_id == entry.pk.bytes))
    with pytest.raises(CommandError) as raised:
        run("schemaless_verify", "entry_user_pub")
    assert raised.value.returncode == 1
    assert "repaired" in run("schemaless_verify", "--repair")
    assert "clean" in run("schemaless_verify", "entry_user_pub")
    with databases.shards.engines[0].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 1
