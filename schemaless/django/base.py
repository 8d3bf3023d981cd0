"""Model: a Django-shaped class whose instances are entities of one kind in the store.

Every model has an implicit ``id`` (a UUID primary key, ``pk`` for short, None until the first
save), a ``_meta`` (:class:`~schemaless.django.options.Options`), its own ``DoesNotExist`` and
``MultipleObjectsReturned``, and ``objects`` unless it declares a manager. An instance remembers
the entity it was read as; ``save()`` writes a new version only if the stored one is still that
version (``schemaless.Conflict`` otherwise), keeping body keys the model does not know about.

    class Entry(sl.Model):
        user_id = sl.IntegerField()
        title = sl.CharField(max_length=200)

    >>> e = Entry.objects.create(user_id=7, title="hi")
    >>> e.title = "hello"; e.save()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import DatabaseError, NotSupportedError
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable

import schemaless

from .conf import config, get_store
from .manager import BaseManager
from .modelbase import ModelBase
from .options import Options


class ModelState:
    """Where an instance stands: ``adding`` until it is first saved or when it was built."""

    def __init__(self) -> None:
        self.adding = True
        self.db: str | None = None
        self.fields_cache: dict[str, Any] = {}


class Model(metaclass=ModelBase):
    """The base of schemaless models; see the module docstring."""

    _meta: Options
    _declared_managers: dict[str, BaseManager]
    _default_manager: Any
    _base_manager: Any
    DoesNotExist: type[Exception]
    MultipleObjectsReturned: type[Exception]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        opts = self._meta
        if opts.abstract:
            raise TypeError("Abstract models cannot be instantiated.")
        self._state = ModelState()
        self._entity: schemaless.Entity | None = None
        if len(args) > len(opts.fields):
            raise IndexError("Number of args exceeds number of fields")
        for field, value in zip(opts.fields, args, strict=False):
            if field.attname in kwargs:
                raise TypeError(
                    f"{type(self).__qualname__}() got both positional and keyword arguments "
                    f"for field '{field.name}'."
                )
            kwargs[field.attname] = value
        for field in opts.fields:
            value = kwargs.pop(field.attname) if field.attname in kwargs else field.get_default()
            self.__dict__[field.attname] = value
        self._set_properties(kwargs)

    @classmethod
    def from_entity(cls, entity: schemaless.Entity) -> Any:
        """An instance of a stored entity; fields missing from its body take their default."""
        obj = cls.__new__(cls)
        obj._state = ModelState()
        obj._state.adding = False
        obj._entity = entity
        values = obj.__dict__
        values["id"] = entity.id
        for field in cls._meta.body_fields:
            value = entity.get(field.name, _MISSING)
            values[field.attname] = (
                field.get_default() if value is _MISSING else field.from_body(value)
            )
        return obj

    # -- identity ------------------------------------------------------------------------------

    @property
    def pk(self) -> Any:
        return self.__dict__.get("id")

    @pk.setter
    def pk(self, value: Any) -> None:
        self.__dict__["id"] = value

    def _get_pk_val(self, meta: Options | None = None) -> Any:
        return self.pk

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        if self._meta.concrete_model is not other._meta.concrete_model:
            return False
        return self is other if self.pk is None else bool(self.pk == other.pk)

    def __hash__(self) -> int:
        if self.pk is None:
            raise TypeError("Model instances without primary key value are unhashable")
        return hash(self.pk)

    def __str__(self) -> str:
        return f"{type(self).__name__} object ({self.pk})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"

    # -- writing -------------------------------------------------------------------------------

    def save(
        self,
        *,
        force_insert: bool = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        """Create the entity, or write a new version of the one this instance was read as.

        A new instance (never saved, or built by hand) is created; one whose id already exists
        raises ``schemaless.Conflict`` rather than overwriting it. A loaded instance is written
        only if the store still holds the version it was read at (``Conflict`` otherwise).
        ``update_fields`` writes those fields over the stored body, still compare-and-set.
        """
        _check_using(using)
        if force_insert and (force_update or update_fields):
            raise ValueError("Cannot force both insert and updating in model saving.")
        names = None if update_fields is None else self._update_field_names(update_fields)
        if names is not None and not names:
            return
        creating = force_insert or self._state.adding or self.pk is None or self._entity is None
        if creating and (force_update or names is not None):
            self._entity, creating = self._current_for_update(), False
        store, kind = get_store(), self._meta.kind
        body = self._body(names, creating)
        if not creating:
            assert self._entity is not None
            entity = store.put(kind, body, id=self.pk, expect_version=self._entity.version)
        elif self.pk is None:
            entity = store.put(kind, body)
        else:
            entity = store.put(kind, body, id=self.pk, expect_version=0)
        self._saved(entity)

    save.alters_data = True  # type: ignore[attr-defined]

    def delete(
        self, using: str | None = None, keep_parents: bool = False
    ) -> tuple[int, dict[str, int]]:
        """Delete the entity if it is still the version read; ``(count, {label: count})``."""
        _check_using(using)
        if self.pk is None:
            raise ValueError(
                f"{self._meta.object_name} object can't be deleted because its id attribute "
                "is set to None."
            )
        count = int(self._delete_current())
        self.pk, self._entity = None, None
        return count, {self._meta.label: count}

    delete.alters_data = True  # type: ignore[attr-defined]

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: Any = None,
    ) -> None:
        """Reload the fields (all, or those named) from the stored entity."""
        _check_using(using)
        queryset = from_queryset if from_queryset is not None else type(self)._base_manager.all()
        entity = queryset.filter(pk=self.pk).order_by()._entity_list()
        if not entity:
            raise self.DoesNotExist(f"{self._meta.object_name} matching query does not exist.")
        fresh = type(self).from_entity(entity[0])
        names = None if fields is None else set(fields)
        for field in self._meta.body_fields:
            if names is None or field.name in names or field.attname in names:
                self.__dict__[field.attname] = fresh.__dict__[field.attname]
        self._entity, self._state.adding = entity[0], False

    async def asave(self, **kwargs: Any) -> None:
        await sync_to_async(self.save)(**kwargs)

    async def adelete(self, using: str | None = None, keep_parents: bool = False) -> Any:
        return await sync_to_async(self.delete)(using=using, keep_parents=keep_parents)

    async def arefresh_from_db(
        self, using: str | None = None, fields: Any = None, from_queryset: Any = None
    ) -> None:
        await sync_to_async(self.refresh_from_db)(
            using=using, fields=fields, from_queryset=from_queryset
        )

    # -- validation (Django's, field by field) ---------------------------------------------------

    def clean(self) -> None:
        """Hook for model-wide validation, as in Django."""

    def clean_fields(self, exclude: Iterable[str] | None = None) -> None:
        excluded = set(exclude or ())
        errors: dict[str, Any] = {}
        for field in self._meta.fields:
            if field.name in excluded:
                continue
            raw = getattr(self, field.attname)
            if field.blank and raw in field.empty_values:
                continue
            try:
                setattr(self, field.attname, field.clean(raw, self))
            except ValidationError as exc:
                errors[field.name] = exc.error_list
        if errors:
            raise ValidationError(errors)

    def validate_unique(self, exclude: Iterable[str] | None = None) -> None:
        """Nothing to do: no field is unique (an entity's id is unique by construction)."""

    def validate_constraints(self, exclude: Iterable[str] | None = None) -> None:
        """Nothing to do: models declare no constraints."""

    def full_clean(
        self,
        exclude: Iterable[str] | None = None,
        validate_unique: bool = True,
        validate_constraints: bool = True,
    ) -> None:
        """Run clean_fields(), clean(); raise ValidationError with every message, as Django does."""
        errors: dict[str, Any] = {}
        excluded = set(exclude or ())
        try:
            self.clean_fields(exclude=excluded)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        try:
            self.clean()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def get_deferred_fields(self) -> set[str]:
        return set()

    def serializable_value(self, field_name: str) -> Any:
        try:
            return getattr(self, self._meta.get_field(field_name).attname)
        except FieldDoesNotExist:
            return getattr(self, field_name)

    @classmethod
    def check(cls, **kwargs: Any) -> list[Any]:
        """System-check messages for this model (see :mod:`schemaless.django.checks`)."""
        from .checks import check_model

        return check_model(cls)

    # -- internals -------------------------------------------------------------------------------

    def _body(self, names: set[str] | None, creating: bool) -> dict[str, Any]:
        """Fields over the stored body, so keys this model does not know survive."""
        body = self._entity.body if self._entity is not None else {}
        for field in self._meta.body_fields:
            if names is None or field.name in names:
                body[field.name] = field.to_body(field.pre_save(self, creating))
        return body

    def _saved(self, entity: schemaless.Entity) -> None:
        self.pk, self._entity, self._state.adding = entity.id, entity, False

    def _update_field_names(self, update_fields: Iterable[str]) -> set[str]:
        names = {
            self._meta.get_field(n).name if n != "pk" else "id" for n in _known(self, update_fields)
        }
        if "id" in names:
            raise ValueError("The id of an entity cannot be updated; it is the entity's key.")
        return names

    def _current_for_update(self) -> schemaless.Entity:
        """An update of an instance never read: the stored entity it will overwrite."""
        if self.pk is None:
            raise ValueError("Cannot force an update in save() with no primary key.")
        found = type(self)._base_manager.filter(pk=self.pk)._entity_list()
        if not found:
            raise DatabaseError("Forced update did not affect any rows.")
        return found[0]

    def _delete_current(self) -> bool:
        entity = self._entity
        if entity is None:
            found = type(self)._base_manager.filter(pk=self.pk)._entity_list()
            if not found:
                return False
            entity = found[0]
        try:
            return get_store().delete(self.pk, expect_version=entity.version)
        except schemaless.Conflict:
            if type(self)._base_manager.filter(pk=self.pk).exists():
                raise
            return False  # deleted by someone else meanwhile: nothing left to do

    def _set_properties(self, kwargs: dict[str, Any]) -> None:
        """Keyword arguments that name a property with a setter are set, as Django allows."""
        for name in list(kwargs):
            prop = getattr(type(self), name, None)
            if isinstance(prop, property) and prop.fset is not None:
                setattr(self, name, kwargs.pop(name))
        if kwargs:
            unexpected = "', '".join(kwargs)
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword arguments: '{unexpected}'"
            )

    def _get_FIELD_display(self, field: Any) -> Any:
        value = getattr(self, field.attname)
        choices = dict(make_hashable(field.flatchoices))
        return force_str(choices.get(make_hashable(value), value), strings_only=True)


_MISSING = object()


def _check_using(using: str | None) -> None:
    if using is not None and using not in config()["DATABASES"]:
        raise NotSupportedError(
            f"using={using!r}: a schemaless model lives in the shards of SCHEMALESS['DATABASES']"
        )


def _known(obj: Model, names: Iterable[str]) -> list[str]:
    names = list(names)
    known = {*obj._meta.field_names, "pk"}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            "The following fields do not exist in this model, are m2m fields, primary keys, "
            f"or are non-concrete fields: {', '.join(unknown)}"
        )
    return names
