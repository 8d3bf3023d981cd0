"""Django configured once for the session; each test gets fresh shards on SQLite or MySQL.

Settings are configured at import (before the test modules import the blog models). A test
that touches the store takes the ``databases`` fixture: it points a Django ``DATABASES`` entry
at the fresh database of the root ``db_url`` fixture (``default`` for SQLite, ``mysql`` for
MySQL), in place, as Django's test runner rewrites NAME, names it in ``SCHEMALESS``, and runs
``schemaless_migrate``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings
from sqlalchemy.engine import make_url

import schemaless
from indexer.worker import Worker

TEMPLATES = {
    "blog/entry_list.html": (
        "{% for entry in entry_list %}{{ entry.title }};{% endfor %}"
        "|page {{ page_obj.number }} of {{ paginator.num_pages }}"
    ),
    "blog/entry_detail.html": "{{ object.title }} by {{ object.user_id }}",
}

UNUSED = os.path.join(tempfile.gettempdir(), "schemaless-django-never-opened.sqlite3")

if not settings.configured:
    settings.configure(
        SECRET_KEY="schemaless-tests",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["schemaless.django", "tests.django.blog"],
        # Each test that touches the store points NAME at its own file; this one is never opened.
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": UNUSED}},
        SCHEMALESS={"DATABASES": ["default"], "INDEXING": "async"},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {"loaders": [("django.template.loaders.locmem.Loader", TEMPLATES)]},
            }
        ],
        LOGGING_CONFIG=None,
    )
    django.setup()


def django_database(url: str) -> dict[str, Any]:
    """The Django DATABASES entry naming the database at a SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database}
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": parsed.database,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
    }


@contextlib.contextmanager
def use_database(url: str, indexing: str = "async") -> Iterator[str]:
    """Point an alias at ``url`` (in place) and name it in SCHEMALESS; restore both after."""
    alias = "default" if url.startswith("sqlite") else "mysql"
    before = settings.DATABASES.get(alias)
    settings.DATABASES[alias] = django_database(url)
    try:
        with override_settings(SCHEMALESS={"DATABASES": [alias], "INDEXING": indexing}):
            yield alias
    finally:
        if before is None:
            del settings.DATABASES[alias]
        else:
            settings.DATABASES[alias] = before


@pytest.fixture
def databases(db_url: str) -> Iterator[schemaless.Store]:
    """Fresh, migrated shards (tables and the blog models' indexes), async indexing."""
    with use_database(db_url):
        yield migrated()


@pytest.fixture
def sync_databases(db_url: str) -> Iterator[schemaless.Store]:
    """Fresh, migrated shards whose writes index themselves (INDEXING "sync")."""
    with use_database(db_url, indexing="sync"):
        yield migrated()


def migrated() -> schemaless.Store:
    from schemaless.django import get_store

    call_command("schemaless_migrate", stdout=io.StringIO())
    return get_store()


def drain() -> None:
    """Run the indexer until the change log is empty, as `schemaless_indexer --burst` does."""
    from schemaless.django import get_store

    Worker(get_store(), burst=True, install_signal_handlers=False).run()


@pytest.fixture(autouse=True)
def _fresh_store() -> Iterator[None]:
    """No test sees the store (or its open connections) of another."""
    from schemaless.django import reset_store

    yield
    reset_store()
