"""Django set up once for the backend's tests; each test gets a fresh store alias.

Settings come from ``settings.py``: Django's tables (and PlainEntry, the reference twin) on an
in-memory SQLite "default", entities on the "entities" alias, which the ``entities`` fixture
points at a fresh database (a SQLite file, or a new database on the MySQL server), in place,
as Django's test runner rewrites NAME, and migrates with Django's own ``migrate``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from sqlalchemy.engine import make_url

from tests.django import settings as test_settings

# The example site's app ``feed`` is installed too: its pages are tested here.
FEED_SITE = Path(__file__).resolve().parents[2] / "examples" / "feed"
if str(FEED_SITE) not in sys.path:
    sys.path.insert(0, str(FEED_SITE))

if not settings.configured:
    settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
    django.setup()
    call_command("migrate", database="default", verbosity=0)

ENGINES = {
    "sqlite": "schemaless.django.backends.sqlite3",
    "mysql": "schemaless.django.backends.mysql",
}


def alias_settings(backend: str, target: str, options: dict[str, Any]) -> dict[str, Any]:
    """The "entities" entry for a SQLite file path or a MySQL URL."""
    entry: dict[str, Any] = {"ENGINE": ENGINES[backend], "OPTIONS": {"INDEXING": "sync", **options}}
    if backend == "sqlite":
        return {**entry, "NAME": target}
    url = make_url(target)
    return {
        **entry,
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
    }


def point_entities(entry: dict[str, Any]) -> None:
    """Point the "entities" alias at another database: a new connection on next use."""
    connections["entities"].close()
    del connections["entities"]
    settings.DATABASES["entities"].clear()
    settings.DATABASES["entities"].update(entry)
    connections.configure_settings(settings.DATABASES)  # Django's defaults (TIME_ZONE...)


@pytest.fixture(autouse=True)
def _database_access(django_db_blocker: Any) -> Iterator[None]:
    """pytest-django blocks database access outside its ``db`` fixture; these tests manage their
    own databases (fresh ones per test), so they may use them."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(params=["sqlite", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for the alias: a file path, or a MySQL URL."""
    if backend == "sqlite":
        return str(tmp_path / "entities.db")
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def store_options() -> dict[str, Any]:
    """Extra OPTIONS of the alias; a test module overrides it."""
    return {}


@pytest.fixture
def unmigrated(backend: str, database: str, store_options: dict[str, Any]) -> Iterator[str]:
    """The "entities" alias on a fresh database, not migrated; its alias."""
    before = dict(settings.DATABASES["entities"])
    point_entities(alias_settings(backend, database, store_options))
    try:
        yield "entities"
    finally:
        point_entities(before)


@pytest.fixture
def entities(unmigrated: str) -> Iterator[str]:
    """The "entities" alias on a fresh database migrated by Django's ``migrate``."""
    call_command("migrate", database=unmigrated, verbosity=0, stdout=io.StringIO())
    from tests.django.shop.models import PlainEntry

    PlainEntry.objects.all().delete()
    yield unmigrated


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "mysql":
            item.add_marker(pytest.mark.mysql)
