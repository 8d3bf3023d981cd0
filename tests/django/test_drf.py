"""Django REST framework and django-filter on schemaless models, with the real packages."""

from __future__ import annotations

import datetime as dt

import pytest
from feed.models import Entry
from rest_framework.test import APIClient

pytestmark = pytest.mark.usefixtures("entities")

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def posts() -> list[Entry]:
    return [
        Entry.objects.create(
            user=["ann", "bob"][i % 2],
            title=f"t{i}",
            tags=["db"] if i % 2 else [],
            published=T0 + dt.timedelta(minutes=i),
        )
        for i in range(5)
    ]


def titles(data: dict) -> list[str]:
    return [item["title"] for item in data["results"]]


def test_a_post_then_a_get_lists_the_new_item(posts: list[Entry]) -> None:
    """The class-level queryset is Django's: DRF re-evaluates it on every request."""
    client = APIClient()
    assert client.get("/api/entries/").json()["count"] == 5
    made = client.post(
        "/api/entries/",
        {"user": "cy", "title": "new", "tags": ["x", "y"], "published": "2026-02-01T00:00:00Z"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["tags"] == ["x", "y"] and made.json()["version"] == 1
    listed = client.get("/api/entries/").json()
    assert listed["count"] == 6 and titles(listed) == ["new", "t4"]


def test_page_number_pagination_and_retrieve(posts: list[Entry]) -> None:
    client = APIClient()
    page = client.get("/api/entries/?page=3").json()
    assert titles(page) == ["t0"] and page["next"] is None and page["previous"]
    one = client.get(f"/api/entries/{posts[1].pk}/").json()
    assert (one["title"], one["tags"], one["user"]) == ("t1", ["db"], "bob")
    assert client.get("/api/entries/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_cursor_pagination_walks_the_index(posts: list[Entry]) -> None:
    client = APIClient()
    seen, url = [], "/api/timeline/"
    while url:
        data = client.get(url).json()
        seen += titles(data)
        url = data["next"]
    assert seen == ["t4", "t3", "t2", "t1", "t0"]


def test_django_filter_on_an_indexed_field(posts: list[Entry]) -> None:
    data = APIClient().get("/api/entries/?user=ann").json()
    assert data["count"] == 3 and titles(data) == ["t4", "t2"]


def test_a_filter_no_index_serves_is_a_400(posts: list[Entry]) -> None:
    response = APIClient().get("/api/entries/?title=t1")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("no index of 'feed_entry' serves title")


def test_update_and_delete(posts: list[Entry]) -> None:
    client = APIClient()
    url = f"/api/entries/{posts[0].pk}/"
    assert client.patch(url, {"tags": ["z"]}, format="json").json()["tags"] == ["z"]
    assert Entry.objects.get(pk=posts[0].pk).tags == ["z"]
    assert client.delete(url).status_code == 204
    assert not Entry.objects.filter(pk=posts[0].pk).exists()


def test_a_stale_compare_and_set_is_a_409(posts: list[Entry]) -> None:
    client = APIClient()
    url = f"/api/entries/{posts[0].pk}/"
    fresh = client.patch(url, {"title": "a"}, format="json", headers={"If-Match": "1"})
    assert fresh.status_code == 200 and fresh.json()["version"] == 2
    stale = client.patch(url, {"title": "b"}, format="json", headers={"If-Match": "1"})
    assert stale.status_code == 409 and Entry.objects.get(pk=posts[0].pk).title == "a"
