"""Manager: ``Model.objects``, the entry point that hands out QuerySets, as in Django.

Its public methods are the QuerySet's, copied at class creation (Django's
``BaseManager._get_queryset_methods``), so ``Entry.objects.filter(...)`` is
``Entry.objects.get_queryset().filter(...)``. A custom manager overrides ``get_queryset()``, or
is made from a custom QuerySet with ``Manager.from_queryset(MyQuerySet)``.
"""

from __future__ import annotations

import inspect
from typing import Any

from .queryset import QuerySet


class BaseManager:
    """A manager bound to one model class; reachable from the class, never from an instance."""

    _queryset_class: type = type(None)

    def __init__(self) -> None:
        self.model: Any = None
        self.name: str | None = None

    def contribute_to_class(self, cls: type, name: str) -> None:
        self.model, self.name = cls, name
        setattr(cls, name, ManagerDescriptor(self))

    def get_queryset(self) -> Any:
        """A new QuerySet over every entity of the model's kind."""
        return self._queryset_class(model=self.model)

    def all(self) -> Any:
        return self.get_queryset()

    @classmethod
    def from_queryset(cls, queryset_class: type, class_name: str | None = None) -> type:
        """A manager class whose methods are those of ``queryset_class``."""
        name = class_name or f"{cls.__name__}From{queryset_class.__name__}"
        attrs = {"_queryset_class": queryset_class, **_proxies(queryset_class)}
        return type(name, (cls,), attrs)

    def __class_getitem__(cls, *args: Any) -> type:
        return cls

    def __repr__(self) -> str:
        label = self.model._meta.label if self.model is not None else "unbound"
        return f"<{type(self).__name__} {label}.{self.name}>"


class ManagerDescriptor:
    """``Entry.objects`` works; ``entry.objects`` raises AttributeError, as in Django."""

    def __init__(self, manager: BaseManager) -> None:
        self.manager = manager

    def __get__(self, instance: Any, owner: type) -> BaseManager:
        if instance is not None:
            raise AttributeError(f"Manager isn't accessible via {owner.__name__} instances")
        return self.manager


def _proxies(queryset_class: type) -> dict[str, Any]:
    """A manager method for each public QuerySet method not marked ``queryset_only``."""
    methods: dict[str, Any] = {}
    for name, method in inspect.getmembers(queryset_class, predicate=inspect.isfunction):
        if name.startswith("_") or getattr(method, "queryset_only", False) or name == "all":
            continue
        methods[name] = _proxy(name, method)
    return methods


def _proxy(name: str, method: Any) -> Any:
    def manager_method(self: BaseManager, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.get_queryset(), name)(*args, **kwargs)

    manager_method.__name__ = method.__name__
    manager_method.__doc__ = method.__doc__
    return manager_method


class Manager(BaseManager.from_queryset(QuerySet)):  # type: ignore[misc]
    """The default manager: every QuerySet method, on the class."""
