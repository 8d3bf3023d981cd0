"""Writes: the QuerySet methods that change entities, each write a compare-and-set.

There are no transactions across entities and no unique columns, so each method works one
entity at a time, and each write names the version it read: a concurrent change raises
``schemaless.Conflict`` in ``save()``, and makes ``update()`` / ``delete()`` re-read that entity,
re-check the QuerySet's filter against it and try again (or skip it when it no longer matches).
``get_or_create()`` is as racy as Django's without a unique constraint: two callers may both
create, unless the lookup names the ``pk``, whose creation is create-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import NotSupportedError
from django.db.models.utils import resolve_callables

import schemaless
from schemaless import Entity

from .conf import get_store

ATTEMPTS = 5


class Writes:
    """Mixed into QuerySet; uses its reading methods."""

    model: Any
    _result_cache: list[Any] | None

    def create(self, **kwargs: Any) -> Any:
        obj = self.model(**kwargs)
        obj.save(force_insert=True)
        return obj

    def get_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[Any, bool]:
        """``(obj, created)``: the match of ``kwargs``, else a new one with ``defaults`` too."""
        try:
            return self.get(**kwargs), False  # type: ignore[attr-defined]
        except self.model.DoesNotExist:
            params = dict(resolve_callables(self._extract_model_params(defaults, **kwargs)))
            try:
                return self.create(**params), True
            except schemaless.Conflict:
                try:
                    return self.get(**kwargs), False  # type: ignore[attr-defined]
                except self.model.DoesNotExist:
                    pass
                raise

    def update_or_create(
        self,
        defaults: dict[str, Any] | None = None,
        create_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, bool]:
        """Update the match with ``defaults`` (re-reading it on a conflict), or create one."""
        update_defaults = defaults or {}
        if create_defaults is None:
            create_defaults = update_defaults
        for attempt in range(ATTEMPTS):
            obj, created = self.get_or_create(create_defaults, **kwargs)
            if created:
                return obj, True
            for name, value in resolve_callables(update_defaults):
                setattr(obj, name, value)
            try:
                obj.save()
                return obj, False
            except schemaless.Conflict:
                if attempt + 1 == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def bulk_create(
        self,
        objs: Iterable[Any],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Any = None,
        unique_fields: Any = None,
    ) -> list[Any]:
        """Create many: those without an id in one transaction per shard (per batch).

        Objects given an id are created one by one, create-only: an existing id raises
        ``Conflict`` unless ``ignore_conflicts``. ``save()`` is not called, as in Django.
        """
        if update_conflicts or update_fields or unique_fields:
            raise NotSupportedError("bulk_create(update_conflicts=...): no field is unique")
        if batch_size is not None and batch_size <= 0:
            raise ValueError("Batch size must be a positive integer.")
        objs = list(objs)
        self._check_instances(objs)
        fresh = [obj for obj in objs if obj.pk is None]
        given = [obj for obj in objs if obj.pk is not None]
        size = batch_size or max(len(fresh), 1)
        for start in range(0, len(fresh), size):
            self._put_many(fresh[start : start + size])
        for obj in given:
            self._put_new(obj, ignore_conflicts)
        return objs

    def bulk_update(
        self, objs: Iterable[Any], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        """Save ``fields`` of each object (compare-and-set, as save(update_fields=...))."""
        objs, fields = list(objs), list(fields)
        if not fields:
            raise ValueError("Field names must be given to bulk_update().")
        if any(obj.pk is None for obj in objs):
            raise ValueError("All bulk_update() objects must have a primary key set.")
        if {"pk", "id"} & set(fields):
            raise ValueError("bulk_update() cannot be used with primary key fields.")
        self._check_instances(objs)
        for obj in objs:
            obj.save(update_fields=fields)
        return len(objs)

    def update(self, **kwargs: Any) -> int:
        """Set fields on every match, one compare-and-set write each; the number written."""
        if self._sliced:  # type: ignore[attr-defined]
            raise TypeError("Cannot update a query once a slice has been taken.")
        for name, value in kwargs.items():
            self._check_update(name, value)
        if not kwargs:
            return 0
        written = sum(
            self._write_current(entity, lambda e: self._update_one(e, kwargs))
            for entity in self._entity_list()  # type: ignore[attr-defined]
        )
        self._result_cache = None
        return written

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete every match, each at the version read; ``(count, {label: count})``."""
        if self._sliced:  # type: ignore[attr-defined]
            raise TypeError("Cannot use 'limit' or 'offset' with delete().")
        if self._state.shape != "model":  # type: ignore[attr-defined]
            raise TypeError("Cannot call delete() after .values() or .values_list()")
        deleted = sum(
            self._write_current(entity, _delete_one)
            for entity in self._entity_list()  # type: ignore[attr-defined]
        )
        self._result_cache = None
        return deleted, {self.model._meta.label: deleted}

    delete.queryset_only = True  # type: ignore[attr-defined]

    # -- internals -------------------------------------------------------------------------------

    def _write_current(self, entity: Entity, write: Callable[[Entity], Any]) -> bool:
        """Write at the version read; on a conflict re-read, re-check the filter, retry."""
        for _ in range(ATTEMPTS):
            try:
                return bool(write(entity))
            except schemaless.Conflict:
                found = self.filter(pk=entity.id).order_by()._entity_list()  # type: ignore[attr-defined]
                if not found:
                    return False  # deleted, or no longer matching: not ours to write
                entity = found[0]
        raise schemaless.Conflict(
            f"entity {entity.id} kept changing; gave up after {ATTEMPTS} tries"
        )

    def _update_one(self, entity: Entity, values: dict[str, Any]) -> bool:
        obj = self.model.from_entity(entity)
        for name, value in values.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(values))
        return True

    def _check_update(self, name: str, value: Any) -> None:
        if name in ("pk", "id"):
            raise NotSupportedError("update(): an entity's id is its key and cannot change")
        try:
            self.model._meta.get_field(name)
        except FieldDoesNotExist:
            raise FieldError(f"Cannot resolve keyword '{name}' into field.") from None
        if hasattr(value, "resolve_expression"):
            raise NotSupportedError(f"update({name}=...): expressions (F ...) are not supported")

    def _check_instances(self, objs: list[Any]) -> None:
        for obj in objs:
            if not isinstance(obj, self.model):
                raise TypeError(f"{obj!r} is not a {self.model._meta.object_name}")

    def _put_many(self, objs: list[Any]) -> None:
        store, kind = get_store(), self.model._meta.kind
        entities = store.put_many(kind, [obj._body(None, True) for obj in objs])
        for obj, entity in zip(objs, entities, strict=True):
            obj._saved(entity)

    def _put_new(self, obj: Any, ignore_conflicts: bool) -> None:
        store, kind = get_store(), self.model._meta.kind
        try:
            entity = store.put(kind, obj._body(None, True), id=obj.pk, expect_version=0)
        except schemaless.Conflict:
            if not ignore_conflicts:
                raise
            return
        obj._saved(entity)

    def _extract_model_params(
        self, defaults: dict[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        """Django's: the non-lookup kwargs and defaults, each naming a field or a property."""
        params = {k: v for k, v in kwargs.items() if "__" not in k}
        params.update(defaults or {})
        invalid = [p for p in params if not self._settable(p)]
        if invalid:
            raise FieldError(
                f"Invalid field name(s) for model {self.model._meta.object_name}: "
                "'" + "', '".join(sorted(invalid)) + "'."
            )
        return params

    def _settable(self, name: str) -> bool:
        if name == "pk" or name in self.model._meta._by_name:
            return True
        prop = getattr(self.model, name, None)
        return isinstance(prop, property) and prop.fset is not None


def _delete_one(entity: Entity) -> bool:
    return get_store().delete(entity.id, expect_version=entity.version)
