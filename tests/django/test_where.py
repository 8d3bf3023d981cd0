"""Filter arguments turned into the store's conditions: exclusions of several lookups, None."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Q

import schemaless
from tests.django.blog.models import Entry
from tests.django.conftest import drain

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def entries(databases: schemaless.Store) -> list[Entry]:
    """Six entries of user 7: t0..t5, tagged g0, g1, g2, g0, g1, g2; t1 and t4 drafts."""
    made = [
        Entry.objects.create(
            user_id=7,
            title=f"t{i}",
            published=T0 + dt.timedelta(minutes=i),
            tags=[f"g{i % 3}"],
            status="draft" if i % 3 == 1 else "published",
        )
        for i in range(6)
    ]
    drain()
    return made


def titles(queryset: object) -> list[str]:
    return sorted(e.title for e in queryset)  # type: ignore[attr-defined]


def test_exclude_of_several_lookups_drops_only_what_matches_them_all(entries: list[Entry]) -> None:
    mine = Entry.objects.filter(user_id=7)
    # NOT (title = t1 AND tags = g1): t1 alone; NOT (title = t1 OR tags = g1) would drop t4 too.
    assert titles(mine.exclude(title="t1", tags="g1")) == ["t0", "t2", "t3", "t4", "t5"]
    assert titles(mine.exclude(title="t1", tags="g0")) == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert titles(mine.exclude(status="draft", tags="g1")) == ["t0", "t2", "t3", "t5"]
    assert titles(mine.exclude(Q(status="draft") & Q(title="t4"))) == ["t0", "t1", "t2", "t3", "t5"]
    assert mine.exclude(title="t1", tags="g1").count() == 5
    # Two exclude() calls drop what either one matches.
    assert titles(mine.exclude(title="t1").exclude(tags="g2")) == ["t0", "t3", "t4"]


@pytest.mark.parametrize(
    "lookups",
    [
        {"tags__startswith": None},  # once a search of the index for the text "None"
        {"user_id": 7, "published__gt": None},
        {"user_id": 7, "published__range": (None, T0)},
        {"tags__in": None},
    ],
)
def test_none_to_a_lookup_other_than_exact_raises(
    entries: list[Entry], lookups: dict[str, object]
) -> None:
    """As Django raises ValueError("Cannot use None as a query value"), never a search for
    the text "None"; ``InvalidQuery`` is a ValueError."""
    with pytest.raises(schemaless.InvalidQuery):
        list(Entry.objects.filter(**lookups))
