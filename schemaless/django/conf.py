"""The store of a Django project: built from ``settings.SCHEMALESS`` at first use, then cached.

``SCHEMALESS["DATABASES"]`` names Django ``DATABASES`` aliases, one shard each, in a fixed order.
Nothing is read at import or at app loading: Django's test runner rewrites each alias's ``NAME``
to its test database after start-up, and the store must follow it there. The cache is keyed on
what the aliases say now, so a rewritten ``NAME`` builds a new store on the next call, and a
``setting_changed`` signal (``override_settings``) drops the cached one.

    SCHEMALESS = {"DATABASES": ["default"], "INDEXING": "async"}

    >>> from schemaless.django import get_store
    >>> get_store().get(entry_id)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from sqlalchemy.engine import URL

import schemaless
from schemaless.errors import ConfigurationError

DEFAULTS: dict[str, Any] = {"DATABASES": ["default"], "INDEXING": "async", "OPTIONS": {}}
KEYS = frozenset(DEFAULTS)
SQLITE = "django.db.backends.sqlite3"
MYSQL = "django.db.backends.mysql"
# Django OPTIONS that must not reach the driver: ours pin the session time zone (init_command)
# and the isolation level the indexer relies on.
_SKIPPED_OPTIONS = frozenset({"init_command", "isolation_level"})

_ENTRY_KEYS = ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD", "OPTIONS")

_lock = threading.Lock()
_cached: tuple[Any, schemaless.Store] | None = None


def get_store() -> schemaless.Store:
    """The project's store, built on first use and rebuilt when its settings have changed."""
    global _cached
    key = _fingerprint()
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        _dispose()
        store = _build()
        _cached = (key, store)
        return store


def reset_store() -> None:
    """Forget the cached store and close its connections; the next get_store() builds anew."""
    with _lock:
        _dispose()


def on_setting_changed(*, setting: str, **_: Any) -> None:
    """Receiver of Django's ``setting_changed``: a new SCHEMALESS or DATABASES, a new store."""
    if setting in ("SCHEMALESS", "DATABASES"):
        reset_store()


def config() -> dict[str, Any]:
    """``settings.SCHEMALESS`` over the defaults; raises ConfigurationError when malformed."""
    given = getattr(settings, "SCHEMALESS", {})
    if not isinstance(given, Mapping):
        raise ConfigurationError("settings.SCHEMALESS must be a dict")
    unknown = set(given) - KEYS
    if unknown:
        raise ConfigurationError(f"unknown SCHEMALESS keys: {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **given}
    aliases = merged["DATABASES"]
    if isinstance(aliases, str) or not aliases or not all(isinstance(a, str) for a in aliases):
        raise ConfigurationError('SCHEMALESS["DATABASES"] must be a non-empty list of aliases')
    if merged["INDEXING"] not in ("async", "sync"):
        raise ConfigurationError('SCHEMALESS["INDEXING"] must be "async" or "sync"')
    return merged


def shard_urls() -> list[str]:
    """The SQLAlchemy URL of every shard, in the order SCHEMALESS["DATABASES"] names them."""
    return [database_url(alias) for alias in config()["DATABASES"]]


def database_url(alias: str) -> str:
    """Translate one Django ``DATABASES`` entry into a SQLAlchemy URL."""
    databases = getattr(settings, "DATABASES", {})
    if alias not in databases:
        raise ConfigurationError(f"SCHEMALESS names database {alias!r}, not in DATABASES")
    entry = databases[alias]
    engine = entry.get("ENGINE", "")
    if engine == SQLITE or engine.endswith(".sqlite3"):
        return sqlite_url(entry.get("NAME"), alias)
    if engine == MYSQL or engine.endswith(".mysql"):
        return mysql_url(entry)
    raise ConfigurationError(
        f"database {alias!r}: {engine!r} is not supported; use SQLite or MySQL"
    )


def sqlite_url(name: Any, alias: str = "default") -> str:
    """``sqlite:///NAME``; a shared in-memory database (Django's test default) as a URI."""
    name = str(name or "")
    if not name or name == ":memory:":
        raise ConfigurationError(
            f"database {alias!r}: a private in-memory SQLite database cannot be shared; "
            "give it a file NAME (or TEST NAME)"
        )
    if name.startswith("file:"):
        path, _, query = name.partition("?")
        extra = dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
        return URL.create(
            "sqlite", database=path, query={**extra, "uri": "true"}
        ).render_as_string()
    return f"sqlite:///{name}"


def mysql_url(entry: Mapping[str, Any]) -> str:
    """``mysql+mysqldb://USER:PASSWORD@HOST:PORT/NAME?charset=utf8mb4&...``.

    A HOST starting with ``/`` is a unix socket. Scalar OPTIONS go to the driver through the
    query string and ``ssl`` becomes ``ssl_<key>``; ``init_command`` and ``isolation_level`` are
    left out, since the store sets both itself.
    """
    host = str(entry.get("HOST") or "")
    query = {"charset": "utf8mb4", **_driver_options(entry.get("OPTIONS") or {})}
    if host.startswith("/"):
        query["unix_socket"], host = host, ""
    port = entry.get("PORT")
    url = URL.create(
        "mysql+mysqldb",
        username=entry.get("USER") or None,
        password=entry.get("PASSWORD") or None,
        host=host or None,
        port=int(port) if port else None,
        database=entry.get("NAME") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def _driver_options(options: Mapping[str, Any]) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in options.items():
        if key in _SKIPPED_OPTIONS:
            continue
        if key == "ssl" and isinstance(value, Mapping):
            query.update({f"ssl_{k}": str(v) for k, v in value.items()})
        elif isinstance(value, (str, int, float, bool)):
            query[key] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            raise ConfigurationError(f"MySQL OPTIONS[{key!r}] cannot be passed to the store")
    return query


def _fingerprint() -> tuple[Any, ...]:
    """What the store is built from, cheap to compare on every call (it is on the hot path).

    Values are compared, not copied: a NAME rewritten by the test runner is a new value; a
    setting replaced through ``override_settings`` resets the cache by signal anyway.
    """
    given = getattr(settings, "SCHEMALESS", None)
    databases = getattr(settings, "DATABASES", {})
    aliases = given.get("DATABASES") if isinstance(given, dict) else None
    if not isinstance(aliases, (list, tuple)):
        aliases = DEFAULTS["DATABASES"]
    entries = tuple(_entry_key(databases.get(alias)) for alias in aliases)
    return (given, entries)


def _entry_key(entry: Any) -> tuple[Any, ...]:
    if not isinstance(entry, dict):
        return (entry,)
    return tuple(map(entry.get, _ENTRY_KEYS))


def _build() -> schemaless.Store:
    merged = config()
    return schemaless.connect(shard_urls(), indexing=merged["INDEXING"], **merged["OPTIONS"])


def _dispose() -> None:
    global _cached
    if _cached is not None:
        _cached[1].close()
        _cached = None
