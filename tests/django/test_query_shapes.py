"""The select compiler's per-shape cache: a query of a shape met before skips Django's
``pre_sql_setup`` and answers exactly as the first query of that shape did."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from django.db.models.sql.compiler import SQLCompiler

from schemaless.django.backends import compiler
from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _fill() -> None:
    for n in range(6):
        Entry.objects.create(
            user_id=n % 2, title=f"t{n}", rank=n, published=START + timedelta(hours=n)
        )


def _titles(user_id: int, order: str = "-published") -> list[str]:
    return [e.title for e in Entry.objects.filter(user_id=user_id).order_by(order)[:2]]


def test_a_repeated_filter_reuses_its_shape_and_answers_alike() -> None:
    _fill()
    compiler._SHAPES.clear()
    assert _titles(0) == ["t4", "t2"]
    with mock.patch.object(SQLCompiler, "pre_sql_setup", side_effect=AssertionError("not reused")):
        assert _titles(1) == ["t5", "t3"]
        assert _titles(0) == ["t4", "t2"]
        loaded = Entry.objects.filter(user_id=1).order_by("-published")[:1].get()
    assert (loaded.title, loaded.rank, loaded.published) == ("t5", 5, START + timedelta(hours=5))


def test_shapes_differ_by_order_and_by_what_is_selected() -> None:
    _fill()
    compiler._SHAPES.clear()
    assert _titles(0, "-published") == ["t4", "t2"]
    assert _titles(0, "published") == ["t0", "t2"]
    assert list(Entry.objects.filter(user_id=0).order_by("published").reverse()[:1]) == [
        Entry.objects.get(title="t4")
    ]
    only = Entry.objects.filter(user_id=1).order_by("-published").only("title")[:1].get()
    assert only.title == "t5" and "rank" in only.get_deferred_fields()
    assert only.rank == 5
    values = list(Entry.objects.filter(user_id=1).order_by("-published").values("rank")[:2])
    assert values == [{"rank": 5}, {"rank": 3}]
    assert Entry.objects.filter(user_id=1).count() == 3
    assert Entry.objects.filter(user_id=1).exists()
    assert _titles(1) == ["t5", "t3"]
