"""pytest-django's ``django_db`` mark (the ``db`` fixture) on a schemaless alias: each test's
store writes are rolled back, as for any Django database.

``django_db_setup`` is overridden here, as pytest-django documents for databases that exist
already: the module's "entities" alias is one fresh SQLite file, migrated once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from feed.models import Entry

from tests.django.conftest import alias_settings, point_entities


@pytest.fixture(scope="module")
def django_db_setup(
    django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    before = dict(settings.DATABASES["entities"])
    path = Path(tmp_path_factory.mktemp("pytest_django")) / "entities.db"
    with django_db_blocker.unblock():
        point_entities(alias_settings("sqlite", str(path), {}))
        call_command("migrate", database="entities", verbosity=0, stdout=io.StringIO())
    yield
    with django_db_blocker.unblock():
        point_entities(before)


@pytest.mark.django_db(databases=["default", "entities"])
@pytest.mark.parametrize("title", ["first", "second"])
def test_each_test_starts_with_an_empty_store(title: str) -> None:
    assert Entry.objects.filter(user="ann").count() == 0
    Entry.objects.create(user="ann", title=title)
    assert Entry.objects.filter(user="ann").count() == 1


@pytest.mark.django_db(databases=["default", "entities"], transaction=True)
def test_transactional_db_flushes_the_store() -> None:
    assert Entry.objects.count() == 0
    Entry.objects.create(user="ann", title="kept until the flush")
    assert Entry.objects.count() == 1
