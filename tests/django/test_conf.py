"""Settings: DATABASES entries become store URLs, read at first use and followed when changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test.utils import override_settings
from sqlalchemy.engine import make_url

from schemaless.django import get_store, reset_store
from schemaless.django.conf import SQLITE, database_url, mysql_url, sqlite_url
from schemaless.errors import ConfigurationError
from tests.django.conftest import use_database

ROOT = Path(__file__).resolve().parents[2]


def test_sqlite_entries_become_file_urls() -> None:
    assert sqlite_url("/data/app.sqlite3") == "sqlite:////data/app.sqlite3"
    assert sqlite_url(Path("rel.db")) == "sqlite:///rel.db"
    shared = sqlite_url("file:memorydb_default?mode=memory&cache=shared")
    assert make_url(shared).database == "file:memorydb_default"
    assert make_url(shared).query == {"cache": "shared", "mode": "memory", "uri": "true"}
    with pytest.raises(ConfigurationError, match="in-memory"):
        sqlite_url(":memory:")


def test_mysql_entries_become_mysqldb_urls() -> None:
    entry = {
        "NAME": "app",
        "USER": "me",
        "PASSWORD": "p@ss:word",
        "HOST": "db.internal",
        "PORT": "3307",
        "OPTIONS": {
            "connect_timeout": 5,
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            "isolation_level": "read committed",
            "ssl": {"ca": "/etc/ca.pem"},
        },
    }
    assert mysql_url(entry) == (
        "mysql+mysqldb://me:p%40ss%3Aword@db.internal:3307/app"
        "?charset=utf8mb4&connect_timeout=5&ssl_ca=%2Fetc%2Fca.pem"
    )
    socket = mysql_url({"NAME": "app", "USER": "root", "HOST": "/run/mysqld/mysqld.sock"})
    assert (
        socket
        == "mysql+mysqldb://root@/app?charset=utf8mb4&unix_socket=%2Frun%2Fmysqld%2Fmysqld.sock"
    )
    with pytest.raises(ConfigurationError, match="conv"):
        mysql_url({"NAME": "app", "OPTIONS": {"conv": {1: str}}})


def test_other_engines_and_unknown_aliases_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not in DATABASES"):
        database_url("nope")
    settings.DATABASES["pg"] = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}
    try:
        with pytest.raises(ConfigurationError, match="not supported"):
            database_url("pg")
    finally:
        del settings.DATABASES["pg"]


def test_the_store_follows_a_rewritten_name_as_the_test_runner_does(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'a.db'}") as alias:
        first = get_store()
        assert get_store() is first
        settings.DATABASES[alias]["NAME"] = str(tmp_path / "test_a.db")
        second = get_store()
        assert second is not first and str(second.shards.engines[0].url).endswith("test_a.db")


def test_setting_changed_and_reset_drop_the_cached_store(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'a.db'}") as alias:
        first = get_store()
        with override_settings(SCHEMALESS={"DATABASES": [alias], "INDEXING": "sync"}):
            assert get_store().indexing == "sync"
        assert get_store() is not first and get_store().indexing == "async"
        kept = get_store()
        reset_store()
        assert get_store() is not kept


def test_options_reach_connect(tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'a.db'}") as alias:
        options = {"compress_threshold": 10, "max_entity_size": 1000}
        with override_settings(SCHEMALESS={"DATABASES": [alias], "OPTIONS": options}):
            store = get_store()
            assert store.max_entity_size == 1000 and store.codec.compress_threshold == 10


def test_nothing_outside_schemaless_django_imports_django() -> None:
    code = (
        "import sys, schemaless, schemaless.cli, schemaless.status, schemaless.testing, "
        "indexer.worker, indexer.backfill, indexer.cleaner; "
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_several_aliases_make_several_shards(tmp_path: Path) -> None:
    from tests.django.blog.models import Entry
    from tests.django.conftest import drain, migrated

    settings.DATABASES["shard1"] = {"ENGINE": SQLITE, "NAME": str(tmp_path / "s1.db")}
    try:
        with (
            use_database(f"sqlite:///{tmp_path / 's0.db'}") as alias,
            override_settings(SCHEMALESS={"DATABASES": [alias, "shard1"]}),
        ):
            store = migrated()
            assert len(store.shards) == 2
            Entry.objects.bulk_create([Entry(user_id=u, title=f"t{u}") for u in range(20)])
            drain()
            counts = [_count(shard.engine) for shard in store.shards]
            assert sum(counts) == 20 and all(counts)
            assert [e.title for e in Entry.objects.filter(user_id__in=[3, 4])] == ["t3", "t4"]
    finally:
        del settings.DATABASES["shard1"]


def _count(engine: object) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(sa.text("SELECT count(*) FROM entities")).scalar_one())
