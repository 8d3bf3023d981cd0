"""The async twins, run with asyncio.run as an async view would await them."""

from __future__ import annotations

import asyncio
from typing import Any

import schemaless
from tests.django.blog.models import Author, Entry
from tests.django.conftest import drain


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_async_crud_on_instances(databases: schemaless.Store) -> None:
    async def scenario() -> tuple[str, str, bool]:
        entry = await Entry.objects.acreate(user_id=1, title="a")
        loaded = await Entry.objects.aget(pk=entry.pk)
        loaded.title = "b"
        await loaded.asave()
        await entry.arefresh_from_db()
        deleted = await entry.adelete()
        gone = not await Entry.objects.filter(pk=loaded.pk).aexists()
        return loaded.title, entry.title, deleted == (1, {"blog.Entry": 1}) and gone

    assert run(scenario()) == ("b", "b", True)


def test_async_queryset_methods(databases: schemaless.Store) -> None:
    async def create() -> list[Author]:
        made = await Author.objects.abulk_create([Author(name=f"a{i}") for i in range(4)])
        obj, created = await Author.objects.aget_or_create(name="zed")
        assert created
        return [*made, obj]

    made = run(create())
    drain()

    async def read() -> dict[str, Any]:
        qs = Author.objects.all()
        updated, created = await Author.objects.aupdate_or_create(
            name="zed", defaults={"email": "z@x"}
        )
        return {
            "count": await qs.acount(),
            "first": (await qs.afirst()).name,
            "last": (await qs.alast()).name,
            "bulk": len(await Author.objects.ain_bulk([made[0].pk, made[1].pk])),
            "iter": [a.name async for a in qs.aiterator(chunk_size=2)],
            "for": [a.name async for a in qs.filter(name__startswith="a")],
            "update": (created, updated.email),
            "exists": await qs.filter(name="nobody").aexists(),
            "deleted": await qs.filter(name="a0").adelete(),
        }

    assert run(read()) == {
        "count": 5,
        "first": "a0",
        "last": "zed",
        "bulk": 2,
        "iter": ["a0", "a1", "a2", "a3", "zed"],
        "for": ["a0", "a1", "a2", "a3"],
        "update": (False, "z@x"),
        "exists": False,
        "deleted": (1, {"blog.Author": 1}),
    }
