"""Options: a model's ``_meta``, as much of Django's as generic views, shortcuts and forms read.

A schemaless model is never registered with Django's app registry (its migrations would then
try to make a table of it); instead every concrete model is kept here, and the management
commands and system checks find them through :func:`get_models`.

    >>> Entry._meta.kind, Entry._meta.label, Entry._meta.get_field("title")
    ('entry', 'blog.Entry', <blog.Entry.title>)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import apps
from django.core.exceptions import AppRegistryNotReady, FieldDoesNotExist
from django.db import NotSupportedError
from django.db.models.options import DEFAULT_NAMES
from django.utils.text import camel_case_to_spaces

from .indexes import Index

META_NAMES = frozenset(
    {
        "abstract",
        "app_label",
        "get_latest_by",
        "indexes",
        "kind",
        "ordering",
        "verbose_name",
        "verbose_name_plural",
    }
)
# Meta options a child inherits from an abstract parent (Django's rule, less what names a kind).
INHERITED = META_NAMES - {"abstract", "kind"}

_models: dict[tuple[str, str], type] = {}


class Options:
    """The ``_meta`` of one schemaless model."""

    private_fields: tuple[Any, ...] = ()
    many_to_many: tuple[Any, ...] = ()
    related_objects: tuple[Any, ...] = ()
    proxy = False
    swapped = None
    managed = False
    auto_created = False

    def __init__(self, model: Any, meta: dict[str, Any], fields: Sequence[Any]) -> None:
        self.model = self.concrete_model = model
        self.meta = meta
        self.object_name = model.__name__
        self.model_name = self.object_name.lower()
        self.abstract = bool(meta.get("abstract", False))
        self.kind: str = meta.get("kind") or self.model_name
        self.indexes: list[Index] = list(meta.get("indexes", ()))
        self.ordering: tuple[str, ...] = tuple(meta.get("ordering", ()))
        self.get_latest_by = meta.get("get_latest_by")
        self.verbose_name = meta.get("verbose_name") or camel_case_to_spaces(self.object_name)
        self.verbose_name_plural = meta.get("verbose_name_plural") or f"{self.verbose_name}s"
        self._app_label: str | None = meta.get("app_label")
        self.fields = tuple(fields)
        self.pk = self.fields[0] if self.fields and not self.abstract else None
        self.default_manager: Any = None
        self.base_manager: Any = None
        self._by_name = {f.name: f for f in self.fields}

    # -- names ---------------------------------------------------------------------------------

    @property
    def app_label(self) -> str:
        """Meta.app_label, else the label of the installed app whose package holds the model."""
        if self._app_label is None:
            try:
                config = apps.get_containing_app_config(self.model.__module__)
            except AppRegistryNotReady:
                config = None
            if config is None:
                return _module_label(self.model.__module__)
            self._app_label = config.label
        return self._app_label

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.object_name}"

    @property
    def label_lower(self) -> str:
        return f"{self.app_label}.{self.model_name}"

    # -- fields --------------------------------------------------------------------------------

    @property
    def concrete_fields(self) -> tuple[Any, ...]:
        return self.fields

    local_fields = local_concrete_fields = concrete_fields

    def get_fields(
        self, include_parents: bool = True, include_hidden: bool = False
    ) -> tuple[Any, ...]:
        return self.fields

    def get_field(self, name: str) -> Any:
        """The field called ``name``; raises FieldDoesNotExist (for ``pk`` too, as Django)."""
        field = self._by_name.get(name)
        if field is None:
            raise FieldDoesNotExist(f"{self.object_name} has no field named '{name}'")
        return field

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def body_fields(self) -> tuple[Any, ...]:
        """Every field but the id, which is the entity's key and not part of its body."""
        return self.fields[1:]

    # -- indexes -------------------------------------------------------------------------------

    def core_indexes(self) -> list[Any]:
        """Meta.indexes as :class:`schemaless.Index` definitions; raises when one is wrong."""
        return [index.to_core(self.model) for index in self.indexes]

    def __repr__(self) -> str:
        return f"<Options for {self.object_name}>"


def meta_options(meta: type | None, parents: Iterable[Any]) -> dict[str, Any]:
    """The Meta attributes of a new model: its own, over those its abstract parents pass on."""
    options: dict[str, Any] = {}
    for parent in reversed(list(parents)):
        options.update({k: v for k, v in parent._meta.meta.items() if k in INHERITED})
    own = {k: v for k, v in vars(meta).items() if not k.startswith("_")} if meta else {}
    unsupported = sorted(set(own) & (set(DEFAULT_NAMES) - META_NAMES))
    if unsupported:
        raise NotSupportedError(f"Meta options not supported by schemaless models: {unsupported}")
    unknown = sorted(set(own) - META_NAMES)
    if unknown:
        raise TypeError(f"'class Meta' got invalid attribute(s): {','.join(unknown)}")
    return {**options, **own}


def register(model: type) -> None:
    """Keep a concrete model for the commands and checks; redefining it replaces it."""
    _models[(model.__module__, model.__qualname__)] = model


def get_models(*, include_uninstalled: bool = False) -> list[type]:
    """The concrete models of installed apps (or every one defined, when asked)."""
    found = list(_models.values())
    if include_uninstalled:
        return found
    installed = {config.label for config in apps.get_app_configs()}
    return [m for m in found if _label(m) in installed]


def _label(model: Any) -> str:
    return str(model._meta.app_label)


def _module_label(module: str) -> str:
    """``blog.models`` -> ``blog``: Django's guess, for a model outside any installed app."""
    parts = module.split(".")
    if len(parts) > 1 and parts[-1] == "models":
        return parts[-2]
    return parts[-1]
