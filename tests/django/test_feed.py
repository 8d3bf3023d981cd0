"""The example site (examples/feed): every page rendered through Django's test client, on real
entities; and the site's own manage.py migrating two fresh SQLite files, as its README says."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from feed.models import Comment, Entry, Like

from tests.django.conftest import FEED_SITE

pytestmark = pytest.mark.usefixtures("entities")

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def posts() -> list[Entry]:
    made = [
        Entry.objects.create(
            user=user, title=f"{user} {i}", tags=tags, published=T0 + dt.timedelta(minutes=i)
        )
        for i, (user, tags) in enumerate(
            [("ann", ["db"]), ("bob", ["db", "python"]), ("ann", ["python"]), ("cy", [])]
        )
    ]
    Like.objects.create(entry=made[0], user="bob")
    Comment.objects.create(entry=made[0], user="cy", body="first!")
    return made


def get(path: str) -> str:
    response = Client().get(path)
    assert response.status_code == 200, path
    return response.content.decode()


def test_home_lists_the_newest_entries(posts: list[Entry]) -> None:
    page = get("/")
    assert page.index("cy 3") < page.index("ann 2") < page.index("bob 1") < page.index("ann 0")


def test_a_users_feed_holds_only_their_entries(posts: list[Entry]) -> None:
    page = get("/u/ann/")
    assert page.index("ann 2") < page.index("ann 0") and "bob 1" not in page
    assert "page 1 of 1" in page


def test_a_tag_page_holds_the_entries_with_that_tag(posts: list[Entry]) -> None:
    page = get("/t/db/")
    assert page.index("bob 1") < page.index("ann 0") and "ann 2" not in page


def test_an_entry_page_shows_its_likes_and_comments(posts: list[Entry]) -> None:
    page = get(f"/e/{posts[0].pk}/")
    assert "ann 0" in page and "1 like: bob" in page and "first!" in page
    assert Client().get("/e/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_posting_liking_and_commenting(posts: list[Entry]) -> None:
    client = Client()
    response = client.post("/", {"user": "dee", "title": "new", "tags": "db, go"})
    assert response.status_code == 302
    entry = Entry.objects.get(user="dee")
    assert (entry.user, entry.tags) == ("dee", ["db", "go"])
    assert client.post(f"/e/{entry.pk}/like/", {"user": "ann"}).status_code == 302
    client.post(f"/e/{entry.pk}/like/", {"user": "ann"})  # a second like by ann is the same
    client.post(f"/e/{entry.pk}/comment/", {"user": "bob", "body": "hi"})
    page = get(f"/e/{entry.pk}/")
    assert "1 like: ann" in page and "<b>bob</b>: hi" in page
    assert "new" in get("/t/go/") and "new" in get("/u/dee/")


def test_the_site_migrates_and_checks_with_its_own_manage_py(tmp_path: Path) -> None:
    env = {**os.environ, "FEED_DATA": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for command in (["migrate"], ["check"], ["schemaless_status"]):
        done = subprocess.run(
            [sys.executable, str(FEED_SITE / "manage.py"), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "feed_entry_user" in done.stdout
    assert {p.name for p in tmp_path.iterdir()} >= {"django.sqlite3", "entities.sqlite3"}
