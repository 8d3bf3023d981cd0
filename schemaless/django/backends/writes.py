"""The write compilers: a Django insert, update or delete answered by the store.

An insert is ``put_many`` with the models' own ids (a taken id is retried as a
compare-and-set, a live one an ``IntegrityError``); an update merges the new values into each
matching stored body, so unknown properties survive, last write wins unless the save asked for
a compare-and-set; a delete deletes. See ``compiler.py`` for the select side.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from django.db import IntegrityError, NotSupportedError
from django.db.models.constants import OnConflict
from django.db.models.sql.constants import MULTI, ROW_COUNT

import schemaless

from ..models import LoadedVersion, VersionField, saving
from .compiler import Compiler, version_of
from .errors import mapped
from .updates import Updates
from .values import converter
from .where import Filter

_MERGE_ATTEMPTS = 50  # each lost race is another writer's commit: bounded, not reached in use


class InsertCompiler(Compiler):
    """SQLInsertCompiler: new entities, with the ids the models minted."""

    def execute_sql(self, returning_fields: Any = None) -> Any:
        if not self.is_schemaless:
            return super().execute_sql(returning_fields)  # type: ignore[misc]
        if self.query.on_conflict not in (None, OnConflict.IGNORE):
            raise NotSupportedError("update_conflicts needs unique keys, which schemaless has not")
        columns = self._columns()
        ids, bodies = [], []
        for obj in self.query.objs:
            entity_id, body = self._entity(obj, columns)
            ids.append(entity_id)
            bodies.append(body)
        versions = self._insert(ids, bodies)
        if not returning_fields:
            return []
        return [
            tuple(i if f.primary_key else v for f in returning_fields)
            for i, v in zip(ids, versions, strict=True)
        ]

    def _columns(self) -> list[tuple[Any, str | None, Callable[[Any], Any]]]:
        """(field, body key or None for the pk, conversion) of each field written, worked
        out once for all the objects (bulk_create's thousand)."""
        return [
            (field, None if field.primary_key else field.column, converter(field))
            for field in self.query.fields
            if not isinstance(field, VersionField)
        ]

    def _entity(
        self, obj: Any, columns: list[tuple[Any, str | None, Callable[[Any], Any]]]
    ) -> tuple[uuid.UUID, dict[str, Any]]:
        body, entity_id = {}, None
        raw = self.query.raw
        for field, key, convert in columns:
            value = getattr(obj, field.attname) if raw else field.pre_save(obj, add=True)
            if hasattr(value, "resolve_expression"):
                raise NotSupportedError(f"{field.name}: schemaless stores values, not expressions")
            if key is None:
                entity_id = convert(value)
            else:
                body[key] = convert(value)
        if entity_id is None:
            raise IntegrityError(f"NOT NULL constraint failed: {self.kind}.id")
        return entity_id, body

    def _insert(
        self, ids: list[uuid.UUID], bodies: list[dict[str, Any]]
    ) -> list[LoadedVersion | None]:
        """put_many with the given ids; an id taken (or a tombstone's) goes one by one, and
        a live entity's raises IntegrityError, or is skipped (None) with ``ignore_conflicts``.

        The versions are :class:`LoadedVersion`: a ``save()`` of a created instance then
        writes without reading the entity first, as one of a loaded instance does."""
        store = self.connection.store
        with mapped():
            try:
                return [version_of(e) for e in store.put_many(self.kind, bodies, ids_=ids)]
            except schemaless.SchemalessError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
            versions: list[LoadedVersion | None] = []
            for entity_id, body in zip(ids, bodies, strict=True):
                try:
                    entity = store.put(self.kind, body, id=entity_id, expect_version=0)
                except schemaless.Conflict as exc:
                    if self.query.on_conflict == OnConflict.IGNORE:
                        versions.append(None)
                        continue
                    raise IntegrityError(f"UNIQUE constraint failed: {self.kind}.id") from exc
                versions.append(version_of(entity))
            return versions


class UpdateCompiler(Compiler):
    """SQLUpdateCompiler: each matching entity's body merged with the new values."""

    def execute_sql(self, result_type: str) -> Any:
        if not self.is_schemaless:
            return super().execute_sql(result_type)  # type: ignore[misc]
        self.check_supported()
        if self.query.related_updates:
            raise NotSupportedError("updates of a parent model's fields need a join")
        updates = Updates(self.query)
        loaded = None if updates.each or updates.computed else self._loaded()
        if loaded is not None and self._write_loaded(loaded, updates.same):
            return 1
        planned: Iterable[tuple[schemaless.Entity, dict[str, Any]]]
        planned = ((e, updates.of(e)) for e in self.selection().entities())
        if updates.computed:  # every computed value converted before the first write
            planned = list(planned)
        return sum(self._write(entity, values, updates) for entity, values in planned)

    def _loaded(self) -> schemaless.Entity | None:
        """The entity a ``save()`` of a loaded instance writes, as the instance was loaded
        (its ``LoadedVersion``), when the update is that save's; else None."""
        current = saving.get()
        version = next((v for f, _, v in self.query.values if isinstance(f, VersionField)), None)
        if current is None or not isinstance(version, LoadedVersion):
            return None
        where = Filter.of(self.query.where, self.query.model, self.query.base_table)
        if where.ids != [current.pk] or version.entity_id != current.pk:
            return None
        if where.conditions or where.tests or where.empty:
            return None
        return schemaless.Entity(version.entity_id, self.kind, int(version), version.body)

    def _write_loaded(self, loaded: schemaless.Entity, values: dict[str, Any]) -> bool:
        """The save's write merged into the body it was loaded with, compare-and-set on its
        version; False when the entity moved on since (a plain save then reads it anew)."""
        current = saving.get()
        assert current is not None
        expected = current.expect_version
        if expected is not None and expected != loaded.version:
            return False
        body = {**loaded._body, **values}
        with mapped():
            try:
                written = self.connection.store.put(
                    self.kind, body, id=loaded.id, expect_version=loaded.version
                )
            except schemaless.Conflict:
                if expected is not None:
                    raise
                return False
        current.version = version_of(written)
        return True

    def _write(self, entity: schemaless.Entity, values: dict[str, Any], updates: Updates) -> bool:
        """Merge and write, last write wins: a lost race merges into the newer version (its
        values computed anew from it), unless the save asked for a compare-and-set
        (``save(expect_version=...)``). False when, after a lost race, the entity is gone or
        no longer matches the filter: SQL's UPDATE re-checks its WHERE on the row it locks."""
        store = self.connection.store
        current = saving.get()
        asked = current is not None and current.pk == entity.id
        expected = current.expect_version if asked and current else None
        with mapped():
            for attempt in itertools.count(1):
                body = {**entity._body, **values}
                try:
                    written = store.put(
                        self.kind,
                        body,
                        id=entity.id,
                        expect_version=entity.version if expected is None else expected,
                    )
                    break
                except schemaless.Conflict:
                    if expected is not None or attempt >= _MERGE_ATTEMPTS:
                        raise
                    newer = store.get_many([entity.id]).get(entity.id)
                    if newer is None or not self._matches(newer):
                        return False
                    entity, values = newer, updates.of(newer)
        if asked and current is not None:
            current.version = version_of(written)
        return True

    def _matches(self, entity: schemaless.Entity) -> bool:
        where = Filter.of(self.query.where, self.query.model, self.query.base_table, self.using)
        return not where.empty and where.passes(entity)


class DeleteCompiler(Compiler):
    """SQLDeleteCompiler: delete the matching entities; the count deleted."""

    def execute_sql(self, result_type: str = MULTI) -> Any:
        if not self.is_schemaless:
            return super().execute_sql(result_type)  # type: ignore[misc]
        self.check_supported()
        selection = self.selection()
        store = self.connection.store
        with mapped():
            where = selection.where
            if where.ids is not None and not where.conditions and not where.tests:
                deleted = sum(store.delete(entity_id) for entity_id in where.ids)
            else:
                deleted = sum(store.delete(e.id) for e in selection.entities())
        return deleted if result_type == ROW_COUNT else _Cursor(deleted)


class _Cursor:
    """What Django reads after a delete: the row count, in a context manager."""

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
