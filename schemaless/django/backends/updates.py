"""Updates: the values an UPDATE writes into each matching body, worked out before any write.

``QuerySet.update(rank=3)`` writes one value into every body. ``bulk_update()`` writes one per
object: Django sends ``filter(pk__in=pks).update(field=Case(When(pk=pk, then=Value(v)), ...))``,
which SQL evaluates row by row; here the Case becomes a map of entity id to value.
``update(likes=F("likes") + 1)`` is computed on each stored body, with ``+``, ``-`` and ``*``
on fields and values (NULL in, NULL out, as in SQL); the write is a compare-and-set retried on
the newer body, so two concurrent increments both count, as SQL's row locks make them. Every
value is converted (``values.to_body``: NOT NULL, ranges, rounding) before the first entity is
written, so a bad one raises with nothing written. Other expressions (a division, a function,
a Case on anything but the pk) raise ``NotSupportedError``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import NotSupportedError
from django.db.models import Case, Value

from schemaless import Entity

from ..models import VersionField
from .residual import check_computable, evaluate
from .values import to_body
from .where import Filter


class Updates:
    """The body values of an update: ``same`` for every entity, ``each`` by entity id,
    ``computed`` from each entity's stored body."""

    def __init__(self, query: Any) -> None:
        self.same: dict[str, Any] = {}
        self.each: dict[str, _ById] = {}
        self.computed: dict[str, tuple[Any, Any]] = {}
        for field, _model, value in query.values:
            if isinstance(field, VersionField):
                continue
            if isinstance(value, Case):
                self.each[field.column] = _ById.parse(field, value, query)
                continue
            if isinstance(value, Value):
                value = value.value
            if hasattr(value, "resolve_expression"):
                check_computable(field, value, query.model)
                self.computed[field.column] = (field, value)
                continue
            self.same[field.column] = to_body(field, value)

    def of(self, entity: Entity) -> dict[str, Any]:
        """What to merge into the body of ``entity`` (as stored now)."""
        if not self.each and not self.computed:
            return self.same
        made = {**self.same, **{column: by.of(entity.id) for column, by in self.each.items()}}
        for column, (field, expression) in self.computed.items():
            made[column] = to_body(field, evaluate(expression, entity._body))
        return made


class _ById:
    """A ``Case(When(pk=..., then=Value(...)), ..., default=Value(...))`` of one field."""

    def __init__(self, field: Any, values: dict[uuid.UUID, Any], default: Any) -> None:
        self.field = field
        self.values = values
        self.default = default  # converted only for an entity no When names (SQL's ELSE)

    @classmethod
    def parse(cls, field: Any, case: Case, query: Any) -> _ById:
        values: dict[uuid.UUID, Any] = {}
        for when in case.cases:
            where = Filter.of(when.condition, query.model, query.base_table)
            pks = where.ids
            if pks is None or len(pks) != 1 or where.conditions or where.tests:
                raise _unsupported(field)
            values[pks[0]] = to_body(field, _value(when.result, field))
        return cls(field, values, _value(case.default, field))

    def of(self, entity_id: uuid.UUID) -> Any:
        if entity_id in self.values:
            return self.values[entity_id]
        return to_body(self.field, self.default)


def _value(expression: Any, field: Any) -> Any:
    if not isinstance(expression, Value):
        raise _unsupported(field)
    return expression.value


def _unsupported(field: Any) -> NotSupportedError:
    return NotSupportedError(
        f"update of {field.name!r}: schemaless writes a Case only as bulk_update() makes it, "
        "When(pk=...) with a value"
    )
