"""Router: schemaless models to their store alias, everything else elsewhere.

``DATABASE_ROUTERS = ["schemaless.django.Router"]`` sends every subclass of the abstract
schemaless ``Model`` to the schemaless alias (the one whose ENGINE is a schemaless backend and
which no other alias names among its SHARDS), keeps their migrations there, and keeps every
other model's migrations off it.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .models import Model

BACKENDS = ("schemaless.django.backends.sqlite3", "schemaless.django.backends.mysql")


def store_aliases() -> list[str]:
    """The aliases whose ENGINE is ours, shards named by another's OPTIONS left out."""
    ours = {a: d for a, d in settings.DATABASES.items() if d.get("ENGINE") in BACKENDS}
    shards = {s for d in ours.values() for s in (d.get("OPTIONS") or {}).get("SHARDS", ())}
    return [alias for alias in ours if alias not in shards]


def is_schemaless_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, Model)


class Router:
    """A Django database router for schemaless models."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._alias() if is_schemaless_model(model) else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if is_schemaless_model(type(obj1)) or is_schemaless_model(type(obj2)):
            return type(obj1) is type(obj2) or None
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        is_store = db in store_aliases() or _is_shard(db)
        if model_name is None:
            return False if is_store else None
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            return False if is_store else None
        if is_schemaless_model(model):
            return db == self._alias()
        return False if is_store else None

    def _alias(self) -> str:
        aliases = store_aliases()
        if len(aliases) != 1:
            raise ImproperlyConfigured(
                f"schemaless models need exactly one schemaless alias in DATABASES; found {aliases}"
            )
        return aliases[0]


def _is_shard(db: str) -> bool:
    entry = settings.DATABASES.get(db, {})
    return entry.get("ENGINE") in BACKENDS
