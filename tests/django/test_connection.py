"""One connection: store statements run on the alias's Django connection, so Django's
transactions, query capture and test isolation see them."""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")


def test_store_statements_are_djangos_queries() -> None:
    connection = connections["entities"]
    with CaptureQueriesContext(connection) as captured:
        e = Entry.objects.create(user_id=1, title="a")
        Entry.objects.get(pk=e.pk)
    statements = " ".join(q["sql"] for q in captured).lower()
    assert "insert into" in statements and "entities" in statements
    assert "select" in statements


def test_an_atomic_block_rolled_back_undoes_the_store_write() -> None:
    with pytest.raises(RuntimeError), transaction.atomic(using="entities"):
        Entry.objects.create(user_id=1, title="gone")
        assert Entry.objects.filter(user_id=1).count() == 1  # seen inside the transaction
        raise RuntimeError
    assert Entry.objects.filter(user_id=1).count() == 0
    with transaction.atomic(using="entities"):
        Entry.objects.create(user_id=1, title="kept")
    assert [e.title for e in Entry.objects.filter(user_id=1)] == ["kept"]


def test_a_savepoint_rolled_back_keeps_the_outer_writes() -> None:
    with transaction.atomic(using="entities"):
        Entry.objects.create(user_id=1, title="outer")
        try:
            with transaction.atomic(using="entities"):
                Entry.objects.create(user_id=1, title="inner")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [e.title for e in Entry.objects.filter(user_id=1)] == ["outer"]


def test_flush_empties_the_store_and_keeps_its_indexes() -> None:
    from django.core.management import call_command

    Entry.objects.create(user_id=1, title="a", rank=1)
    call_command("flush", database="entities", interactive=False, verbosity=0)
    assert Entry.objects.count() == 0
    assert Entry.objects.filter(rank=1).count() == 0
    assert (
        len([i for i, _ in connections["entities"].store.indexes() if i.kind == "shop_entry"]) == 4
    )
    Entry.objects.create(user_id=1, title="b", rank=1)
    assert [e.title for e in Entry.objects.filter(rank=1)] == ["b"]
