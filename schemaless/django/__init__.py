"""schemaless.django: schemaless entities as ordinary Django models, through a database backend.

A schemaless database is a ``DATABASES`` alias whose ENGINE is
``schemaless.django.backends.sqlite3`` (the embedded default) or ``.mysql``; models that
subclass :class:`schemaless.django.models.Model` are routed there and stored as entities, and
Django's own Model, QuerySet, admin, forms and migrations work on them::

    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "django.db"},
        "entities": {"ENGINE": "schemaless.django.backends.sqlite3", "NAME": "entities.db"},
    }
    DATABASE_ROUTERS = ["schemaless.django.Router"]
    INSTALLED_APPS += ["schemaless.django"]

``manage.py migrate`` creates the store's tables and indexes; ``manage.py schemaless_indexer``
(``schemaless_backfill``, ``schemaless_verify``, ``schemaless_status``) runs the daemons.
Nothing here imports a model at import time, so the app can be listed in INSTALLED_APPS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .router import Router

__all__ = ["Router"]


def __getattr__(name: str) -> Any:
    # Lazy: the router imports the abstract Model, which Django lets us define only once the
    # app registry is being populated (DATABASE_ROUTERS is read after that).
    if name == "Router":
        from .router import Router

        return Router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
