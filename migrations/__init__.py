"""The alembic script directory for schemaless's fixed tables (see schemaless.migration)."""
