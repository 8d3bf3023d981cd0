"""``manage.py schemaless_*``: the ``schemaless`` subcommands on the alias's store, run through
``call_command`` as manage.py runs them (their own connections, built from the alias's settings)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from django.core.management import CommandError, call_command
from django.db import connections

from schemaless import Index
from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")


@pytest.fixture
def store_options() -> dict[str, Any]:
    return {"INDEXING": "async"}  # the indexer command has a change log to drain


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_reports_pending_changes_and_indexes() -> None:
    Entry.objects.create(user_id=1, title="a")
    assert "entry_user_pub" in run("schemaless_status")
    data = json.loads(run("schemaless_status", "--json", "--database", "entities"))
    shop = {i["name"]: i["state"] for i in data["indexes"] if i["kind"] == "shop_entry"}
    assert data["pending_changes"] == 1 and len(shop) == 4 and set(shop.values()) == {"ready"}


def test_indexer_burst_drains_the_log_into_the_indexes() -> None:
    Entry.objects.bulk_create([Entry(user_id=2, title=f"t{i}") for i in range(5)])
    assert Entry.objects.filter(user_id=2).count() == 0  # not indexed yet
    run("schemaless_indexer", "--burst", "--batch-size", "2")
    assert connections["entities"].store.pending_changes() == 0
    assert Entry.objects.filter(user_id=2).count() == 5


def test_backfill_builds_a_building_index() -> None:
    Entry.objects.create(user_id=1, title="a", extra={"n": 1})
    run("schemaless_indexer", "--burst")
    store = connections["entities"].store
    store.add_index(Index("entry_n", kind="shop_entry", fields={"extra": "int"}))
    assert "backfilled 1 entities" in run("schemaless_backfill", "entry_n")
    assert dict((i.name, s) for i, s in store.indexes())["entry_n"] == "ready"
    with pytest.raises(CommandError) as raised:
        run("schemaless_backfill", "nope")
    assert raised.value.returncode == 2


def test_verify_exits_1_when_an_index_is_wrong_and_repair_fixes_it() -> None:
    entry = Entry.objects.create(user_id=1, title="a")
    run("schemaless_indexer", "--burst")
    assert "clean" in run("schemaless_verify")
    store = connections["entities"].store
    table = store.registry.table(next(i for i, _ in store.indexes() if i.name == "entry_title"))
    with store.shards.engines[0].begin() as conn:
        conn.execute(table.delete().where(table.c.entity_id == entry.pk.bytes))
    with pytest.raises(CommandError) as raised:
        run("schemaless_verify", "entry_title")
    assert raised.value.returncode == 1
    assert "repaired" in run("schemaless_verify", "--repair")
    assert "clean" in run("schemaless_verify", "entry_title")
    with store.shards.engines[0].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 1


def test_options_are_the_schemaless_commands_and_the_alias_must_be_ours() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        run("schemaless_indexer", "--burst", "--batch-size", "0")
    with pytest.raises(CommandError, match="no schemaless backend"):
        run("schemaless_status", "--database", "default")
    with pytest.raises(CommandError, match="no database alias"):
        run("schemaless_status", "--database", "nope")


def test_inspectdb_refuses_a_schemaless_alias_and_serves_others() -> None:
    Entry.objects.create(user_id=1, title="a")  # tables with columns it could misread
    with pytest.raises(CommandError, match="schemaless store"):
        run("inspectdb", "--database", "entities")
    assert "db_table = 'shop_plainentry'" in run(
        "inspectdb", "--database", "default", "shop_plainentry"
    )


def test_the_commands_connect_with_the_alias_driver_options(backend: str) -> None:
    from django.conf import settings

    from tests.django.conftest import point_entities

    if backend != "mysql":
        pytest.skip("driver OPTIONS are mysqlclient's")
    before = dict(settings.DATABASES["entities"])
    probe = {"init_command": "SET @@session.no_such_variable = 1", "charset": "utf8mb4"}
    point_entities({**before, "OPTIONS": {**before["OPTIONS"], **probe}})
    try:  # the command's own connections run the alias's init_command, as Django's would
        with pytest.raises(CommandError, match="no_such_variable"):
            run("schemaless_indexer", "--burst")
    finally:
        point_entities(before)


def test_driver_options_become_url_parameters_and_ours_stay_out() -> None:
    from schemaless.django.management.base import driver_options

    options = {
        "INDEXING": "async",
        "isolation_level": "read committed",
        "charset": "utf8mb4",
        "ssl": {"ca": "/ca.pem"},
        "autocommit": True,
        "connect_timeout": 5,
    }
    assert driver_options("entities", options) == {
        "charset": "utf8mb4",
        "ssl_ca": "/ca.pem",
        "autocommit": "1",
        "connect_timeout": "5",
    }
    with pytest.raises(CommandError, match="conv"):
        driver_options("entities", {"conv": {1: int}})
