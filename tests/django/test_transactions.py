"""Django transactions on a store of two shards (OPTIONS["SHARDS"]): a transaction writes one
shard; a write that would span two, or escape the transaction, raises NotSupportedError before
any statement, so nothing is half-committed."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import NotSupportedError, connections, transaction

from tests.django.conftest import alias_settings, point_entities
from tests.django.shop.models import Entry


@pytest.fixture
def two_shards(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The "entities" alias with a second shard, the alias "entities_1", both migrated; indexed
    by the indexer (sync indexing would write an entity's index rows on the other shard)."""
    if backend == "sqlite":
        targets = [str(tmp_path / "s0.db"), str(tmp_path / "s1.db")]
    else:
        targets = [
            str(request.getfixturevalue("mysql_url")),
            str(request.getfixturevalue("second_mysql_url")),
        ]
    before = dict(settings.DATABASES["entities"])
    settings.DATABASES["entities_1"] = alias_settings(backend, targets[1], {})
    options = {"SHARDS": ["entities_1"], "INDEXING": "async"}
    point_entities(alias_settings(backend, targets[0], options))
    try:
        call_command("migrate", database="entities", verbosity=0, stdout=io.StringIO())
        yield "entities"
    finally:
        connections["entities_1"].close()
        del connections["entities_1"]
        del settings.DATABASES["entities_1"]
        point_entities(before)


@pytest.fixture
def second_mysql_url(mysql_server: str) -> Iterator[str]:
    from schemaless.testing import create_database, drop_database

    name = f"t_{uuid.uuid4().hex[:16]}"
    url = create_database(mysql_server, name)
    try:
        yield url
    finally:
        drop_database(mysql_server, name)


def on_shard(position: int) -> uuid.UUID:
    """A new id that the store routes to the shard at ``position``."""
    shards = connections["entities"].store.shards
    while True:
        made = uuid.uuid4()
        if shards.shard_for_id(made.bytes) == position:
            return made


def entry(position: int, **fields: Any) -> Entry:
    return Entry(id=on_shard(position), user_id=1, title="t", **fields)


def stored() -> int:
    return len(connections["entities"].store.query("shop_entry").scan())


def test_a_transaction_writing_one_shard_commits_and_rolls_back(two_shards: str) -> None:
    with transaction.atomic(using=two_shards):
        entry(0).save()
        entry(0).save()
    assert stored() == 2
    with pytest.raises(RuntimeError), transaction.atomic(using=two_shards):
        entry(0).save()
        raise RuntimeError("rolled back")
    assert stored() == 2


def test_a_transaction_that_would_write_two_shards_raises_and_writes_neither(
    two_shards: str,
) -> None:
    with pytest.raises(NotSupportedError, match="one shard"), transaction.atomic(using=two_shards):
        entry(0).save()
        with transaction.atomic(using="entities_1"):
            entry(1).save()
    assert stored() == 0
    with pytest.raises(NotSupportedError), transaction.atomic(using=two_shards):
        Entry.objects.bulk_create([entry(0), entry(1)])
    assert stored() == 0


def test_a_write_that_would_escape_the_transaction_raises_before_writing(
    two_shards: str,
) -> None:
    with pytest.raises(NotSupportedError, match="entities_1"), transaction.atomic(using=two_shards):
        entry(1).save()
    assert stored() == 0
    with transaction.atomic(using="entities_1"):
        entry(1).save()  # its own shard's transaction
    assert stored() == 1


def test_outside_a_transaction_each_write_commits_on_its_shard(two_shards: str) -> None:
    for position in (0, 1, 1, 0):
        entry(position).save()
    Entry.objects.bulk_create([entry(0), entry(1)])
    assert stored() == Entry.objects.count() == 6
