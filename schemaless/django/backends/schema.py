"""SchemaEditor: Django migrations on a schemaless alias, with no DDL but index tables.

``CreateModel`` registers the kind (no table: the kind is the model's ``db_table``, a name in
the ``entities`` table) and adds the model's indexes; ``AddField``, ``AlterField`` and
``RemoveField`` run nothing and rewrite no entity, except that a field Django indexes by itself
(a ``ForeignKey``, ``db_index=True``, ``unique=True``) gets a store index of its own, as a
plain table gets its index: ``shelf.book_set``, ``filter(shelf=s)`` and the deletes that
follow a relation are served. ``AddIndex`` creates the index table and
backfills it online (``OPTIONS["BACKFILL_ON_MIGRATE"]``, default True; else it stays
``building`` for ``schemaless_backfill``); ``RemoveIndex`` retires and drops it. Django's own
``django_migrations`` stays a table, handled by Django's editor.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from django.db import NotSupportedError

from schemaless import Index as StoreIndex

from .base import is_schemaless
from .values import index_type, to_body

logger = logging.getLogger(__name__)


class SchemaEditor:
    """The schema editor mixin; the backend puts it in front of Django's own editor."""

    connection: Any

    def __enter__(self) -> Any:
        editor = super().__enter__()  # type: ignore[misc]
        atomic = getattr(self, "atomic", None)
        if atomic is not None and getattr(self, "atomic_migration", False):
            # The store's index tables and registry, on every shard: not the caller's
            # transaction, which OneShard keeps to one shard (DDL commits on its own anyway).
            atomic._schemaless_own = True
        return editor

    # -- models ----------------------------------------------------------------------------

    def create_model(self, model: Any) -> None:
        if not is_schemaless(model):
            return super().create_model(model)  # type: ignore[misc]
        _check_pk(model)
        for index in model._meta.indexes:
            self.add_index(model, index)
        for field in model._meta.local_concrete_fields:
            self._add_field_index(model, field)
        return None

    def delete_model(self, model: Any, *args: Any, **kwargs: Any) -> None:
        """Drops the model's indexes. Its entities stay (a kind is only a name): delete them
        with ``Model.objects.all().delete()`` first to empty it."""
        if not is_schemaless(model):
            return super().delete_model(model, *args, **kwargs)  # type: ignore[misc]
        for index in model._meta.indexes:
            self.remove_index(model, index)
        for field in model._meta.local_concrete_fields:
            self._remove_field_index(model, field)
        return None

    def alter_db_table(self, model: Any, old_db_table: str, new_db_table: str) -> None:
        if not is_schemaless(model):
            return super().alter_db_table(model, old_db_table, new_db_table)  # type: ignore[misc]
        if old_db_table != new_db_table:
            raise NotSupportedError(
                f"renaming the kind {old_db_table!r} would rewrite every entity; not supported"
            )
        return None

    # -- fields: never DDL -----------------------------------------------------------------

    def add_field(self, model: Any, field: Any) -> None:
        if not is_schemaless(model):
            return super().add_field(model, field)  # type: ignore[misc]
        self._add_field_index(model, field)
        return None

    def remove_field(self, model: Any, field: Any) -> None:
        if not is_schemaless(model):
            return super().remove_field(model, field)  # type: ignore[misc]
        self._remove_field_index(model, field)
        return None

    def alter_field(self, model: Any, old_field: Any, new_field: Any, strict: bool = False) -> None:
        if not is_schemaless(model):
            return super().alter_field(model, old_field, new_field, strict)  # type: ignore[misc]
        old, new = field_index(model, old_field), field_index(model, new_field)
        if old != new:
            self._remove_field_index(model, old_field)
            self._add_field_index(model, new_field)
        return None

    def _add_field_index(self, model: Any, field: Any) -> None:
        index = field_index(model, field)
        if index is not None:
            self._create(index)

    def _remove_field_index(self, model: Any, field: Any) -> None:
        index = field_index(model, field)
        names = {i.name for i, _ in self.connection.store.indexes()}
        if index is not None and index.name in names:
            self.connection.store.drop_index(index.name)

    # -- indexes ---------------------------------------------------------------------------

    def add_index(self, model: Any, index: Any) -> None:
        """Create the store index, and backfill it unless the alias says not to."""
        if not is_schemaless(model):
            return super().add_index(model, index)  # type: ignore[misc]
        self._create(store_index(model, index))
        return None

    def _create(self, index: StoreIndex) -> None:
        store = self.connection.store
        state = store.add_index(index)
        if state != "ready" and self.connection.schemaless.backfill_on_migrate:
            from schemaless_indexer.backfill import Backfill

            Backfill(store, index.name, install_signal_handlers=False).run()

    def remove_index(self, model: Any, index: Any) -> None:
        if not is_schemaless(model):
            return super().remove_index(model, index)  # type: ignore[misc]
        self.connection.store.drop_index(index.name)
        return None

    def rename_index(self, model: Any, old_index: Any, new_index: Any) -> None:
        if not is_schemaless(model):
            return super().rename_index(model, old_index, new_index)  # type: ignore[misc]
        self.remove_index(model, old_index)
        self.add_index(model, new_index)
        return None

    # -- constraints: nothing enforces them ------------------------------------------------

    def add_constraint(self, model: Any, constraint: Any) -> None:
        if not is_schemaless(model):
            return super().add_constraint(model, constraint)  # type: ignore[misc]
        raise NotSupportedError(f"constraint {constraint.name!r}: a schemaless kind has none")

    def remove_constraint(self, model: Any, constraint: Any) -> None:
        if not is_schemaless(model):
            return super().remove_constraint(model, constraint)  # type: ignore[misc]
        return None

    def alter_unique_together(self, model: Any, old: Any, new: Any) -> None:
        if not is_schemaless(model):
            return super().alter_unique_together(model, old, new)  # type: ignore[misc]
        if new:
            raise NotSupportedError("unique_together: a schemaless kind enforces no uniqueness")
        return None

    def alter_index_together(self, model: Any, old: Any, new: Any) -> None:
        if not is_schemaless(model):
            return super().alter_index_together(model, old, new)  # type: ignore[misc]
        return None

    def alter_db_table_comment(self, model: Any, old: Any, new: Any) -> None:
        if not is_schemaless(model):
            return super().alter_db_table_comment(model, old, new)  # type: ignore[misc]
        return None


def store_index(model: Any, index: Any) -> StoreIndex:
    """The store index of a Django index on a schemaless model: same name, the kind, typed
    fields in order, a field named with a leading ``-`` stored descending (as Django's own
    index would be; either serves both orders)."""
    if index.expressions or index.condition is not None or index.include:
        raise NotSupportedError(
            f"index {index.name!r}: expressions, condition and include are not supported; "
            "use fields=[...] and where={...}"
        )
    opts = model._meta
    fields, defaults, descending = {}, {}, []
    for name in index.fields:
        field = opts.get_field(name.lstrip("-"))
        fields[field.column] = index_type(field)
        if name.startswith("-"):
            descending.append(field.column)
        default = _index_default(field)
        if default is not None:
            defaults[field.column] = default
    shard_on = getattr(index, "shard_on", None)
    if shard_on is not None:
        shard_on = opts.get_field(shard_on).column
    where = {opts.get_field(k).column: v for k, v in getattr(index, "where", {}).items()}
    return StoreIndex(
        index.name,
        kind=opts.db_table,
        fields=fields,
        shard_on=shard_on,
        where=where,
        defaults=defaults,
        descending=descending,
    )


def field_index(model: Any, field: Any) -> StoreIndex | None:
    """The index Django gives a field by itself (a ``ForeignKey``, ``db_index=True``,
    ``unique=True``; uniqueness is not enforced), or None: for other fields, the pk, and types
    no store index holds (a filter on those stays residual). Named after the kind and column."""
    if field.primary_key or not (field.db_index or field.unique) or field.column is None:
        return None
    try:
        kind = index_type(field)
    except NotSupportedError:
        return None
    base = re.sub(r"[^a-z0-9_]", "_", f"{model._meta.db_table}_{field.column}".lower())
    digest = hashlib.md5(base.encode(), usedforsecurity=False).hexdigest()[:8]
    default = _index_default(field)
    return StoreIndex(
        f"f{base[:38]}_{digest}" if not base[0].isalpha() else f"{base[:39]}_{digest}",
        kind=model._meta.db_table,
        fields={field.column: kind},
        defaults={} if default is None else {field.column: default},
    )


def _index_default(field: Any) -> Any:
    """The field's default as the body holds it, which an entity stored before the field
    existed reads back, and so is indexed as; None when it has none, or a callable one
    (``timezone.now``: each load reads another value, which no index row can hold)."""
    if not field.has_default() or callable(field.default):
        return None
    return to_body(field, field.get_default())


def _check_pk(model: Any) -> None:
    pk = model._meta.pk
    if pk.get_internal_type() != "UUIDField" or not pk.has_default():
        raise NotSupportedError(
            f"{model._meta.label}: a model on a schemaless alias needs a UUID primary key with a "
            "default (subclass schemaless.django.models.Model)"
        )
