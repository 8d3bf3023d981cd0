"""What the sqlite3 and mysql backends share: the store of an alias, features, operations.

Each backend is Django's own (``django.db.backends.sqlite3`` or ``.mysql``) with these mixins in
front: the alias keeps a real connection to a real database, where Django's bookkeeping table
(``django_migrations``) stays a table, and every model routed to it is a kind of entities in
the store that :attr:`StoreWrapper.store` builds on that same connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils.functional import cached_property

from schemaless.codec import Codec
from schemaless.shards import ShardMap
from schemaless.store import Store

from ..cache import cache_for
from .connection import ConnectionShard, OneShard

DEFAULT_MAX_EXAMINED = 10_000
# The tables that stay tables on a schemaless alias: Django's migration recorder.
SQL_TABLES = frozenset({"django_migrations"})
# The fixed tables' data that a flush (TransactionTestCase, `manage.py flush`) empties.
DATA_TABLES = ("entities", "entity_changes", "entity_failures")


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    """The schemaless part of an alias's OPTIONS (taken out before the driver sees them)."""

    shards: tuple[str, ...] = ()
    indexing: str = "async"
    max_examined: int = DEFAULT_MAX_EXAMINED
    backfill_on_migrate: bool = True
    cache: str | None = None  # a CACHES alias (schemaless.django.cache)

    KEYS = ("SHARDS", "INDEXING", "MAX_EXAMINED", "BACKFILL_ON_MIGRATE", "CACHE")

    @classmethod
    def of(cls, alias: str, options: Mapping[str, Any]) -> StoreOptions:
        made = cls(
            shards=tuple(options.get("SHARDS", ())),
            indexing=options.get("INDEXING", "async"),
            max_examined=options.get("MAX_EXAMINED", DEFAULT_MAX_EXAMINED),
            backfill_on_migrate=bool(options.get("BACKFILL_ON_MIGRATE", True)),
            cache=options.get("CACHE"),
        )
        if made.indexing not in ("async", "sync"):
            raise ImproperlyConfigured(f"DATABASES[{alias!r}]: INDEXING is 'async' or 'sync'")
        if isinstance(made.max_examined, bool) or not isinstance(made.max_examined, int):
            raise ImproperlyConfigured(f"DATABASES[{alias!r}]: MAX_EXAMINED is a count")
        if made.cache is not None and not isinstance(made.cache, str):
            raise ImproperlyConfigured(f"DATABASES[{alias!r}]: CACHE names an alias of CACHES")
        return made


def is_schemaless(model: Any) -> bool:
    """Whether the model is stored as entities on a schemaless alias (all but Django's own)."""
    return model._meta.db_table not in SQL_TABLES


def read_here(model: Any, using: str) -> bool:
    """Whether ``model``'s entities are read on the schemaless alias ``using``: what a query
    there may read with it, by id or first (select_related, an ``__in`` queryset)."""
    return is_schemaless(model) and router.db_for_read(model) == using


class StoreWrapper:
    """The DatabaseWrapper mixin: the alias's store, on the alias's own connection."""

    settings_dict: dict[str, Any]
    alias: str
    vendor: str

    def __init__(self, settings_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        options = dict(settings_dict.get("OPTIONS") or {})
        ours = {key: options.pop(key) for key in StoreOptions.KEYS if key in options}
        super().__init__({**settings_dict, "OPTIONS": options}, *args, **kwargs)  # type: ignore[call-arg]
        self.schemaless = StoreOptions.of(self.alias, ours)

    @cached_property
    def store(self) -> Store:
        """The store of this alias: its own database first, then those OPTIONS["SHARDS"] names.

        Built once per connection object (Django keeps one per thread), so each thread's
        store runs on that thread's connections.
        """
        shards = [ConnectionShard(self)]
        for alias in self.schemaless.shards:
            other = connections[alias]
            if not isinstance(other, StoreWrapper):
                raise ImproperlyConfigured(
                    f"shard {alias!r} of {self.alias!r} is no schemaless alias"
                )
            shards.append(ConnectionShard(other))
        if len(shards) > 1:
            OneShard(shards)
        name = self.schemaless.cache
        cache = None if name is None else cache_for(self.alias, name)
        return Store(
            ShardMap(shards), codec=Codec(), indexing=self.schemaless.indexing, cache=cache
        )

    def check_constraints(self, table_names: Any = None) -> None:
        """Nothing to check: the store keeps no foreign keys (``loaddata`` asks after loading),
        and the alias's SQL tables (the migration recorder, the store's own) have none."""
        return None

    def prepare_database(self) -> None:
        """Before ``migrate``: the fixed tables (alembic) on every shard; idempotent."""
        super().prepare_database()  # type: ignore[misc]
        self.store.migrate()


class Features:
    """DatabaseFeatures mixin: what the store can and cannot do for Django."""

    can_return_columns_from_insert = True
    can_return_rows_from_bulk_insert = True
    has_bulk_insert = True
    supports_ignore_conflicts = True  # an id taken by a live entity is skipped (writes.py)
    supports_update_conflicts = False
    supports_update_conflicts_with_target = False
    supports_select_related = True  # read by id after the page (related.py), not joined
    has_select_for_update = False  # select_for_update() locks nothing: compare-and-set does
    supports_foreign_keys = False
    can_defer_constraint_checks = False
    supports_select_union = False
    supports_select_intersection = False
    supports_select_difference = False
    supports_slicing_ordering_in_compound = False
    supports_subqueries_in_group_by = False
    supports_over_clause = False
    supports_transactions = True
    uses_savepoints = True
    has_native_duration_field = True  # a body holds a timedelta as it is


class Operations:
    """DatabaseOperations mixin: our compilers, and a flush that empties the store too."""

    connection: Any

    def sql_flush(self, style: Any, tables: Any, *args: Any, **kwargs: Any) -> list[str]:
        """Django's flush of the alias's SQL tables, and the store's data: every entity, change
        and index row (the registry and the schema stay)."""
        own = [t for t in tables if t not in DATA_TABLES and not t.startswith("index_")]
        statements: list[str] = super().sql_flush(style, own, *args, **kwargs)  # type: ignore[misc]
        existing = self.connection.introspection.table_names()
        data = [t for t in existing if t in DATA_TABLES or t.startswith("index_")]
        quote = self.connection.ops.quote_name
        return statements + [f"DELETE FROM {quote(table)}" for table in data]
