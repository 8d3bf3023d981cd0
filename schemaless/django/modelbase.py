"""ModelBase: the metaclass that turns a class body of fields into a schemaless model.

It collects the fields (copies of an abstract parent's first, then the class's own, behind the
implicit ``id``), builds ``_meta`` from ``class Meta``, and, for a concrete model, adds
``DoesNotExist`` / ``MultipleObjectsReturned``, the managers (``objects`` unless one is
declared) and ``get_FOO_display()`` for fields with choices, then registers it for the
management commands and checks. Subclassing a concrete model would be multi-table
inheritance, which needs joins: it raises ``NotSupportedError``.
"""

from __future__ import annotations

import copy
from functools import partialmethod
from typing import Any

from django.core.exceptions import FieldError, MultipleObjectsReturned, ObjectDoesNotExist
from django.db import NotSupportedError

import schemaless

from .fields import BodyField, id_field
from .manager import BaseManager, Manager
from .options import Options, meta_options, register

RESERVED = ("id", "pk")


class ModelBase(type):
    """Builds ``_meta``, the exceptions and the managers of every model class."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any], **kw: Any) -> Any:
        if not any(isinstance(b, ModelBase) for b in bases):
            return super().__new__(mcs, name, bases, attrs, **kw)  # Model itself
        parents = [b for b in bases if getattr(b, "_meta", None) is not None]
        _check_parents(name, parents)
        meta = meta_options(attrs.pop("Meta", None), parents)
        own = {k: attrs.pop(k) for k in list(attrs) if isinstance(attrs[k], BodyField)}
        managers = {k: attrs.pop(k) for k in list(attrs) if isinstance(attrs[k], BaseManager)}
        cls: Any = super().__new__(mcs, name, bases, attrs, **kw)
        fields = _fields(cls, parents, own)
        if not meta.get("abstract"):
            fields.insert(0, id_field())
            fields[0].set_attributes_from_name("id")
        cls._meta = Options(cls, meta, fields)
        for field in fields:
            _bind(cls, field)
        cls._declared_managers = {**_inherited_managers(parents), **managers}
        if not cls._meta.abstract:
            _make_concrete(cls)
        return cls


def _check_parents(name: str, parents: list[Any]) -> None:
    concrete = [p.__name__ for p in parents if not p._meta.abstract]
    if concrete:
        raise NotSupportedError(
            f"{name} subclasses the concrete model(s) {concrete}: multi-table inheritance needs "
            "joins; subclass an abstract model (Meta.abstract = True) instead"
        )


def _fields(cls: type, parents: list[Any], own: dict[str, BodyField]) -> list[Any]:
    """Fields copied from abstract parents, then the class's own, in declaration order."""
    fields: dict[str, Any] = {}
    for parent in parents:
        for field in parent._meta.fields:
            fields.setdefault(field.name, copy.deepcopy(field))
    for name, field in own.items():
        if name in RESERVED:
            raise FieldError(
                f"'{name}' is reserved in {cls.__name__}: every model has an implicit id"
            )
        if name in fields:
            raise FieldError(
                f"Local field '{name}' in class '{cls.__name__}' clashes with field of similar "
                "name from base class"
            )
        field.set_attributes_from_name(name)  # type: ignore[attr-defined]
        fields[name] = field
    return list(fields.values())


def _bind(cls: Any, field: Any) -> None:
    field.model = cls
    if field.choices is not None and f"get_{field.name}_display" not in cls.__dict__:
        setattr(
            cls, f"get_{field.name}_display", partialmethod(cls._get_FIELD_display, field=field)
        )


def _inherited_managers(parents: list[Any]) -> dict[str, BaseManager]:
    managers: dict[str, BaseManager] = {}
    for parent in reversed(parents):
        managers.update(parent._declared_managers)
    return managers


def _make_concrete(cls: Any) -> None:
    """Exceptions, managers and registration: what only a model with entities needs."""
    module, qualname = cls.__module__, cls.__qualname__
    for name, bases in (
        ("DoesNotExist", (ObjectDoesNotExist, schemaless.NotFound)),
        ("MultipleObjectsReturned", (MultipleObjectsReturned,)),
    ):
        attrs = {"__module__": module, "__qualname__": f"{qualname}.{name}"}
        setattr(cls, name, type(name, bases, attrs))
    managers = dict(cls._declared_managers) or {"objects": Manager()}
    for name, manager in managers.items():
        copy.copy(manager).contribute_to_class(cls, name)
    base = Manager()
    base.model, base.name = cls, "_base_manager"
    cls._meta.default_manager = cls._default_manager = getattr(cls, next(iter(managers)))
    cls._meta.base_manager = cls._base_manager = base
    register(cls)
