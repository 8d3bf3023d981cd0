"""Index: a model's secondary index, declared in ``Meta.indexes`` the way Django declares one.

It maps onto :class:`schemaless.Index`: the kind is the model's, and each field's index type
comes from the model field (IntegerField -> int, CharField -> str, DateTimeField -> datetime,
UUIDField -> uuid, BooleanField -> bool, FloatField -> float, ListField(X) -> X's type). A
``-`` prefix only says which direction the index is mostly read in; the column is the field,
and a query may read it either way.

    class Meta:
        indexes = [sl.Index(fields=["user_id", "-published"], shard_on="user_id",
                            name="entry_user_pub")]
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import schemaless
from schemaless.errors import ConfigurationError

MAX_NAME = 48


class Index:
    """The declaration; :meth:`to_core` resolves it against a model."""

    def __init__(
        self,
        *,
        fields: Sequence[str],
        name: str | None = None,
        shard_on: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(fields, str) or not fields:
            raise ValueError("Index.fields must be a non-empty list of field names")
        self.fields = list(fields)
        self.name = name
        self.shard_on = shard_on.lstrip("-") if shard_on else None
        self.where = dict(where or {})

    @property
    def field_names(self) -> list[str]:
        return [f.lstrip("-") for f in self.fields]

    def index_name(self, kind: str) -> str:
        """The given name, else ``<kind>_<fields>`` (hashed down to 48 characters if longer)."""
        if self.name:
            return self.name
        name = "_".join([kind, *self.field_names])
        if len(name) <= MAX_NAME:
            return name
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        return f"{name[: MAX_NAME - 9]}_{digest}"

    def to_core(self, model: Any) -> schemaless.Index:
        """The core definition for ``model``; raises ConfigurationError naming what is wrong."""
        opts = model._meta
        types = {name: _index_type(opts, name) for name in self.field_names}
        for name in self.where:
            _body_field(opts, name)
        return schemaless.Index(
            self.index_name(opts.kind),
            kind=opts.kind,
            fields=types,
            shard_on=self.shard_on,
            where=self.where,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = f", shard_on={self.shard_on!r}" if self.shard_on else ""
        extra += f", where={self.where!r}" if self.where else ""
        return f"<Index: fields={self.fields!r}, name={self.name!r}{extra}>"


def _body_field(opts: Any, name: str) -> Any:
    field = opts._by_name.get(name)
    if field is None:
        raise ConfigurationError(
            f"index names {name!r}, which is not a field of {opts.object_name}"
        )
    if field is opts.pk:
        raise ConfigurationError("the id is the entity's key, not a body field: it needs no index")
    return field


def _index_type(opts: Any, name: str) -> str:
    field = _body_field(opts, name)
    if field.index_type is None:
        raise ConfigurationError(
            f"{opts.object_name}.{name} is a {type(field).__name__}, which no index can hold"
        )
    return str(field.index_type)
