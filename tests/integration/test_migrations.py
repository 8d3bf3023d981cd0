"""The alembic migrations create exactly the tables that tables.py describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import schemaless
from schemaless.migration import VERSION_TABLE
from schemaless.tables import metadata


def test_migrated_schema_equals_the_metadata(store: schemaless.Store) -> None:
    engine = store.shards.engines[0]
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []


def test_migrate_twice_changes_nothing(store: schemaless.Store) -> None:
    store.migrate()
    names = set(sa.inspect(store.shards.engines[0]).get_table_names())
    assert {"entities", "entity_changes", "schemaless_indexes", "entity_failures"} <= names
    assert {"schemaless_shard_map", "schemaless_shard", "schemaless_kinds"} <= names
    assert VERSION_TABLE in names
    assert "alembic_version" not in names


def test_the_version_table_is_our_own(store: schemaless.Store) -> None:
    with store.shards.engines[0].connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert versions == [("0004",)]


def test_entities_is_innodb_with_the_contract_columns(mysql_url: str) -> None:
    store = schemaless.connect(mysql_url)
    store.migrate()
    with store.shards.engines[0].connect() as conn:
        ddl = conn.execute(sa.text("SHOW CREATE TABLE entities")).one()[1]
    store.close()
    for fragment in ("`id` binary(16)", "`body` mediumblob", "timestamp(6)", "ENGINE=InnoDB"):
        assert fragment in ddl
    assert "utf8mb4" in ddl
