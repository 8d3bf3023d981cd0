"""System checks (``manage.py check``): catch a wrong setting or model before any query runs.

    schemaless.E001  SCHEMALESS is malformed (not a dict, unknown keys, bad INDEXING ...)
    schemaless.E002  SCHEMALESS["DATABASES"] names an alias that DATABASES lacks
    schemaless.E003  an alias's ENGINE (or NAME) cannot hold a shard
    schemaless.E010  a model's kind is not a valid name
    schemaless.W011  two models share a kind (each would read the other's entities)
    schemaless.E020  Meta.indexes holds something that is not an sl.Index
    schemaless.E021  an index names a field the model does not have
    schemaless.E022  an index names a field no index type can hold (DecimalField, JSONField ...)
    schemaless.E023  an index definition is invalid (its name, shard_on, where ...)
    schemaless.E024  two indexes share a name (names are global to the store)
    schemaless.W025  an indexed string may be longer than 255 characters (it is left out)
    schemaless.E030  a field name contains '__'
    schemaless.E040  Meta.ordering names a field the model does not have, or the pk

None of them opens a connection.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks

from schemaless.errors import ConfigurationError, InvalidName
from schemaless.ids import check_name
from schemaless.index import MAX_LENGTH

from .conf import config, database_url
from .fields import TextField
from .indexes import Index
from .options import get_models

TAG = "schemaless"


@checks.register(TAG)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The SCHEMALESS setting, and the DATABASES entries it names."""
    try:
        merged = config()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="schemaless.E001")]
    errors = []
    for alias in merged["DATABASES"]:
        if alias not in getattr(settings, "DATABASES", {}):
            errors.append(
                checks.Error(
                    f"SCHEMALESS['DATABASES'] names {alias!r}, which is not in DATABASES.",
                    hint="Add the alias to DATABASES, or remove it from SCHEMALESS.",
                    id="schemaless.E002",
                )
            )
            continue
        try:
            database_url(alias)
        except ConfigurationError as exc:
            errors.append(checks.Error(str(exc), id="schemaless.E003"))
    return errors


@checks.register(TAG, checks.Tags.models)
def check_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every schemaless model of the installed apps (or of ``app_configs``)."""
    models = get_models()
    if app_configs is not None:
        labels = {config.label for config in app_configs}
        models = [m for m in models if m._meta.app_label in labels]  # type: ignore[attr-defined]
    errors = [error for model in models for error in check_model(model)]
    return errors + check_shared(models)


def check_model(model: Any) -> list[checks.CheckMessage]:
    """The checks of one model: its kind, field names, ordering and indexes."""
    errors = _kind_errors(model) + _field_errors(model) + _ordering_errors(model)
    for index in model._meta.indexes:
        errors += _index_errors(model, index)
    return errors


def check_shared(models: Iterable[Any]) -> list[checks.CheckMessage]:
    """What two models may clash on: their kind, and the store-wide index names."""
    models = list(models)
    errors: list[checks.CheckMessage] = []
    kinds = collections.defaultdict(list)
    for model in models:
        kinds[model._meta.kind].append(model._meta.label)
    for kind, labels in kinds.items():
        if len(labels) > 1:
            errors.append(
                checks.Warning(
                    f"Models {', '.join(labels)} share the kind {kind!r}.",
                    hint="Each reads the other's entities; give each its own Meta.kind.",
                    id="schemaless.W011",
                )
            )
    names = collections.defaultdict(list)
    for model in models:
        for index in model._meta.indexes:
            if isinstance(index, Index):
                names[index.index_name(model._meta.kind)].append(model._meta.label)
    for name, labels in names.items():
        if len(labels) > 1:
            errors.append(
                checks.Error(
                    f"The index name {name!r} is used more than once ({', '.join(labels)}).",
                    hint="Index names are global to the store; give each its own name.",
                    id="schemaless.E024",
                )
            )
    return errors


def _kind_errors(model: Any) -> list[checks.CheckMessage]:
    try:
        check_name(model._meta.kind, "kind")
    except InvalidName as exc:
        return [checks.Error(str(exc), hint="Set Meta.kind.", obj=model, id="schemaless.E010")]
    return []


def _field_errors(model: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"Field names must not contain '__': {f.name!r}.", obj=model, id="schemaless.E030"
        )
        for f in model._meta.fields
        if "__" in f.name
    ]


def _ordering_errors(model: Any) -> list[checks.CheckMessage]:
    opts = model._meta
    return [
        checks.Error(
            f"Meta.ordering refers to {name!r}, which is not an orderable field of "
            f"{opts.object_name}.",
            hint="Order by a body field (ids are random UUIDs).",
            obj=model,
            id="schemaless.E040",
        )
        for name in opts.ordering
        if not isinstance(name, str)
        or name.lstrip("-") not in opts._by_name
        or name.lstrip("-") == "id"
    ]


def _index_errors(model: Any, index: Any) -> list[checks.CheckMessage]:
    opts = model._meta
    if not isinstance(index, Index):
        return [
            checks.Error(
                f"Meta.indexes of {opts.object_name} holds {index!r}, not an sl.Index.",
                obj=model,
                id="schemaless.E020",
            )
        ]
    errors = [_field_error(model, index, name) for name in [*index.field_names, *index.where]]
    found = [e for e in errors if e is not None]
    if found:
        return found
    try:
        index.to_core(model)
    except (ConfigurationError, InvalidName) as exc:
        return [checks.Error(f"{index!r}: {exc}", obj=model, id="schemaless.E023")]
    return [w for name in index.field_names if (w := _length_warning(model, index, name))]


def _field_error(model: Any, index: Index, name: str) -> checks.CheckMessage | None:
    opts = model._meta
    field = opts._by_name.get(name)
    if field is None or field is opts.pk:
        return checks.Error(
            f"{index!r} refers to the nonexistent field {name!r}.",
            hint="Index body fields only: the id needs no index.",
            obj=model,
            id="schemaless.E021",
        )
    if name in index.field_names and field.index_type is None:
        return checks.Error(
            f"{index!r} names {name!r}, a {type(field).__name__}, which no index type can hold.",
            obj=model,
            id="schemaless.E022",
        )
    return None


def _length_warning(model: Any, index: Index, name: str) -> checks.CheckMessage | None:
    field = model._meta._by_name[name]
    item = getattr(field, "base_field", field)
    if field.index_type != "str":
        return None
    if isinstance(item, TextField) or (item.max_length or MAX_LENGTH + 1) > MAX_LENGTH:
        return checks.Warning(
            f"{index!r} indexes {name!r}, which may hold more than {MAX_LENGTH} characters.",
            hint="Longer values are left out of the index; set max_length <= 255.",
            obj=model,
            id="schemaless.W025",
        )
    return None
