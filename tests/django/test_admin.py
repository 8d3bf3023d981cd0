"""Django's admin on schemaless models: the changelist (search on an indexed field), add,
change, delete (one, and the bulk action), and the history, through the test client."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from feed.models import Comment, Entry, Like

pytestmark = pytest.mark.usefixtures("entities")

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def admin() -> Client:
    user, _ = User.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def posts() -> list[Entry]:
    return [
        Entry.objects.create(
            user=["ann", "bob"][i % 2], title=f"t{i}", published=T0 + dt.timedelta(minutes=i)
        )
        for i in range(4)
    ]


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def test_the_changelist_lists_and_searches_an_indexed_field(
    admin: Client, posts: list[Entry]
) -> None:
    listed = page(admin, "/admin/feed/entry/")
    # As cell text (">t0<"): a bare "t0" can occur in the page's random CSRF token.
    assert listed.index(">t3<") < listed.index(">t2<") < listed.index(">t0<")
    assert "4 entries" in listed
    found = page(admin, "/admin/feed/entry/?q=ann")
    assert ">t0<" in found and ">t2<" in found and ">t1<" not in found
    assert "2 results" in found


def test_the_date_hierarchy_drills_down_by_year_month_and_day(admin: Client) -> None:
    for n, when in enumerate([T0, T0 + dt.timedelta(days=40), T0 + dt.timedelta(days=400)]):
        Entry.objects.create(user="ann", title=f"d{n}", published=when)
    top = page(admin, "/admin/feed/entry/")  # two years: Min and Max of published, then years
    assert "published__year=2026" in top and "published__year=2027" in top
    year = page(admin, "/admin/feed/entry/?published__year=2026")
    assert "published__month=1" in year and "published__month=2" in year
    assert ">d0<" in year and ">d1<" in year and ">d2<" not in year
    month = page(admin, "/admin/feed/entry/?published__year=2026&published__month=2")
    assert "published__day=10" in month and ">d1<" in month and ">d0<" not in month


def test_a_changelist_of_likes_reads_their_entries_at_once(
    admin: Client, posts: list[Entry]
) -> None:
    def reads(likes: int) -> int:
        Like.objects.all().delete()
        for n in range(likes):
            Like.objects.create(entry=posts[n % 4], user=f"u{n}")
        with CaptureQueriesContext(connections["entities"]) as captured:
            listed = page(admin, "/admin/feed/like/")
        assert all(f">{p.title}<" in listed for p in posts[:likes])  # each like's entry
        return len(captured)

    assert reads(2) == reads(8)  # select_related: one read of the entries, not one per like


def test_add_change_and_history(admin: Client, posts: list[Entry]) -> None:
    added = admin.post(
        "/admin/feed/entry/add/",
        {
            "user": "cy",
            "title": "new",
            "tags": "a, b",
            "published_0": "2026-03-01",
            "published_1": "10:00:00",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    entry = Entry.objects.get(user="cy")
    assert (entry.title, entry.tags) == ("new", ["a", "b"])
    assert entry.published == dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)
    form = page(admin, f"/admin/feed/entry/{entry.pk}/change/")
    assert 'value="a, b"' in form and 'value="new"' in form
    changed = admin.post(
        f"/admin/feed/entry/{entry.pk}/change/",
        {
            "user": "cy",
            "title": "newer",
            "tags": "a",
            "published_0": "2026-03-01",
            "published_1": "10:00:00",
        },
    )
    assert changed.status_code == 302
    entry.refresh_from_db()
    assert (entry.title, entry.tags, entry.version) == ("newer", ["a"], 2)
    history = page(admin, f"/admin/feed/entry/{entry.pk}/history/")
    assert "Added." in history and "Changed Title, Tags" in history


def test_delete_one_with_its_likes_and_comments(admin: Client, posts: list[Entry]) -> None:
    Like.objects.create(entry=posts[0], user="bob")
    Comment.objects.create(entry=posts[0], user="bob", body="hi")
    confirm = page(admin, f"/admin/feed/entry/{posts[0].pk}/delete/")
    assert "bob likes" in confirm  # the cascade is listed, read through the likes' index
    done = admin.post(f"/admin/feed/entry/{posts[0].pk}/delete/", {"post": "yes"})
    assert done.status_code == 302
    assert not Entry.objects.filter(pk=posts[0].pk).exists()
    assert not Like.objects.filter(entry_id=posts[0].pk).exists()
    assert not Comment.objects.filter(entry_id=posts[0].pk).exists()
    assert admin.get(f"/admin/feed/entry/{uuid.uuid4()}/change/").status_code == 302


def test_the_bulk_delete_action(admin: Client, posts: list[Entry]) -> None:
    chosen = [str(posts[1].pk), str(posts[2].pk)]
    asked = admin.post(
        "/admin/feed/entry/", {"action": "delete_selected", "_selected_action": chosen}
    )
    assert asked.status_code == 200 and "Are you sure you want to delete" in asked.content.decode()
    done = admin.post(
        "/admin/feed/entry/",
        {"action": "delete_selected", "_selected_action": chosen, "post": "yes"},
    )
    assert done.status_code == 302
    assert sorted(e.title for e in Entry.objects.all()) == ["t0", "t3"]
