"""A migrated store on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import schemaless


@pytest.fixture
def store(db_url: str) -> Iterator[schemaless.Store]:
    """A migrated, empty store, once on SQLite and once on MySQL."""
    store = schemaless.connect(db_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def sync_store(db_url: str) -> Iterator[schemaless.Store]:
    """A migrated store that writes index rows in the write's own transaction."""
    store = schemaless.connect(db_url, indexing="sync")
    store.migrate()
    yield store
    store.close()
