"""The async twins of Django's QuerySet and Model, run as an async view would await them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from tests.django.shop.models import Entry

pytestmark = pytest.mark.usefixtures("entities")


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Await it as an ASGI server would: Django's sync work runs back on this thread (and its
    connection to the test's database)."""
    return async_to_sync(scenario)()


def test_async_crud_on_instances() -> None:
    async def scenario() -> tuple[str, str, bool]:
        entry = await Entry.objects.acreate(user_id=1, title="a")
        loaded = await Entry.objects.aget(pk=entry.pk)
        loaded.title = "b"
        await loaded.asave()
        await entry.arefresh_from_db()
        deleted = await entry.adelete()
        gone = not await Entry.objects.filter(pk=loaded.pk).aexists()
        return loaded.title, entry.title, deleted == (1, {"shop.Entry": 1}) and gone

    assert run(scenario) == ("b", "b", True)


def test_async_queryset_methods() -> None:
    async def scenario() -> dict[str, Any]:
        made = await Entry.objects.abulk_create([Entry(user_id=1, title=f"a{i}") for i in range(4)])
        obj, created = await Entry.objects.aget_or_create(title="zed", defaults={"user_id": 2})
        updated, again = await Entry.objects.aupdate_or_create(title="zed", defaults={"rank": 5})
        qs = Entry.objects.filter(user_id=1).order_by("published")
        return {
            "count": await Entry.objects.acount(),
            "first": (await qs.afirst()).title,
            "last": (await qs.alast()).title,
            "bulk": len(await Entry.objects.ain_bulk([made[0].pk, made[1].pk])),
            "iter": [e.title async for e in qs.aiterator(chunk_size=2)],
            "prefix": sorted([e.title async for e in Entry.objects.filter(title__startswith="a")]),
            "update": (created, again, updated.pk == obj.pk, updated.rank),
            "exists": await Entry.objects.filter(title="nobody").aexists(),
            "deleted": await Entry.objects.filter(title="a0").adelete(),
        }

    assert run(scenario) == {
        "count": 5,
        "first": "a0",
        "last": "a3",
        "bulk": 2,
        "iter": ["a0", "a1", "a2", "a3"],
        "prefix": ["a0", "a1", "a2", "a3"],
        "update": (True, False, True, 5),
        "exists": False,
        "deleted": (1, {"shop.Entry": 1}),
    }
