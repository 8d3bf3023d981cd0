"""Residual lookups: what no index drives but Python can check on each entity an index yields.

Django's SQL answers ``title__icontains="ann"`` or ``published__month=3`` row by row; here an
index drives the query's other conditions and these are tested on the entities it yields, as
DESIGN 5 makes every condition an index does not hold (at most ``MAX_EXAMINED`` of them; a
query of which no index drives any condition still raises ``IndexRequired``).

Text lookups compare as Django documents them, whatever the server's collation: ``contains``,
``startswith`` and ``endswith`` case-sensitive, their ``i`` twins and ``iexact`` on casefolded
text, ``regex``/``iregex`` with Python's ``re.search`` (which Django's SQLite backend uses too).
An int field compares its decimal text, as SQL's cast does; a list field holds when an element
does; NULL matches nothing. Date transforms extract in the current time zone, as Django's SQL
does with ``USE_TZ``; ``__year`` and ``__date`` are ranges of the field instead (where.py), which an
index drives. A comparison with an expression of the entity's own fields (``filter(rank__gt=
F("user_id") + 1)``) is computed on the body, as an ``update()`` with one is (updates.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DataError, NotSupportedError
from django.db.models import Value
from django.db.models.expressions import Col, CombinedExpression
from django.utils import timezone

from schemaless import Entity
from schemaless.lookups import LOOKUPS, Condition

from .values import INDEX_TYPES, to_body

Test = Callable[[Entity], bool]
Match = Callable[[str], bool]

TEXT_LOOKUPS = (
    "contains",
    "icontains",
    "iexact",
    "endswith",
    "iendswith",
    "istartswith",
    "regex",
    "iregex",
)
_TEXT = {
    "contains": lambda p: lambda s: p in s,
    "exact": lambda p: lambda s: s == p,
    "startswith": lambda p: lambda s: s.startswith(p),
    "endswith": lambda p: lambda s: s.endswith(p),
}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    CombinedExpression.ADD: operator.add,
    CombinedExpression.SUB: operator.sub,
    CombinedExpression.MUL: operator.mul,
}
# Django's extracts, from a datetime or date in the current zone (week_day: Sunday is 1).
EXTRACTS: dict[str, Callable[[Any], Any]] = {
    "year": lambda d: d.year,
    "date": lambda d: d.date() if isinstance(d, dt.datetime) else d,
    "iso_year": lambda d: d.isocalendar()[0],
    "month": lambda d: d.month,
    "day": lambda d: d.day,
    "week": lambda d: d.isocalendar()[1],
    "week_day": lambda d: d.isoweekday() % 7 + 1,
    "iso_week_day": lambda d: d.isoweekday(),
    "quarter": lambda d: (d.month - 1) // 3 + 1,
    "hour": lambda d: d.hour,
    "minute": lambda d: d.minute,
    "second": lambda d: d.second,
}


def text_test(field: Any, name: str, pattern: Any) -> Test:
    """``field__<name>=pattern`` (one of TEXT_LOOKUPS) as a test of one entity."""
    if element_type(field) not in ("str", "int"):
        raise NotSupportedError(
            f"lookup {name!r} on {field.name!r}: schemaless compares text and integer fields only"
        )
    match = _matcher(name, str(pattern))
    column = field.column

    def test(entity: Entity) -> bool:
        held = entity._body.get(column)
        for value in held if isinstance(held, list) else [held]:
            if value is not None and not isinstance(value, bool) and match(str(value)):
                return True
        return False

    return test


def element_type(field: Any) -> str | None:
    """The index type of the field's values (a ListField's: its elements'), None if none."""
    return INDEX_TYPES.get(getattr(field, "base_field", field).get_internal_type())


def compared_test(field: Any, name: str, expression: Any) -> Test:
    """``field__<name>=F("other") + 1`` (``name`` a comparison: exact, gt, gte, lt, lte): the
    field compared with an expression of the same entity's fields; NULL on either side
    matches nothing, as in SQL."""
    column = field.column

    def test(entity: Entity) -> bool:
        body = entity._body
        try:
            held, other = body.get(column), evaluate(expression, body)
        except DataError:  # a body holding another type: no typed column would match it
            return False
        if held is None or other is None:
            return False
        return Condition("v", name, other).matches({"v": held}, None)

    return test


def extract_test(field: Any, part: str, name: str, value: Any, tz: dt.tzinfo) -> Test:
    """``field__<part>__<name>=value`` (``published__month__in=[1, 2]``) as a test."""
    if name not in LOOKUPS:
        raise NotSupportedError(f"lookup {name!r} on {field.name}__{part} is not supported")
    extract = EXTRACTS[part]
    condition = Condition.parse(f"v__{name}", tuple(value) if name in ("in", "range") else value)
    column = field.column

    def test(entity: Entity) -> bool:
        held = entity._body.get(column)
        if held is None:
            return False
        return condition.matches({"v": extract(local(held, tz))}, None)

    return test


def as_range(field: Any, part: str, name: str, value: Any, tz: dt.tzinfo) -> tuple[str, Any] | None:
    """``__year`` and ``__date`` lookups as a lookup on the field itself (``published__year=
    2024`` is a range of the year in ``tz``, as Django's SQL makes it), which an index drives;
    None for the others."""
    if part == "year" and isinstance(value, int) and 1 <= value < 9999:
        start, after = dt.datetime(value, 1, 1), dt.datetime(value + 1, 1, 1)
    elif part == "date" and isinstance(value, dt.date) and name != "range":
        start = dt.datetime.combine(value, dt.time())
        after = start + dt.timedelta(days=1)
    elif part == "date" and name == "range" and all(isinstance(v, dt.date) for v in value):
        first = as_range(field, part, "gte", value[0], tz)
        last = as_range(field, part, "lte", value[1], tz)
        return ("range", (first[1], last[1])) if first and last else None
    else:
        return None
    first, final = _bound(field, start, tz), _bound(field, after - dt.timedelta(microseconds=1), tz)
    made = {"exact": ("range", (first, final)), "gt": ("gt", final), "gte": ("gte", first)}
    made.update({"lt": ("lt", first), "lte": ("lte", final)})
    return made.get(name)


def _bound(field: Any, moment: dt.datetime, tz: dt.tzinfo) -> Any:
    if field.get_internal_type() == "DateField":
        return moment.date()
    return timezone.make_aware(moment, tz) if settings.USE_TZ else moment


def local(value: Any, tz: dt.tzinfo) -> Any:
    """A stored datetime in ``tz`` (a naive one or a date as it is)."""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return timezone.localtime(value, tz)
    return value


def check_computable(field: Any, expression: Any, model: Any) -> None:
    """Refuse, before any read, what :func:`evaluate` cannot compute."""
    if isinstance(expression, Value):
        return
    if isinstance(expression, Col) and expression.target.model._meta.concrete_model is (
        model._meta.concrete_model
    ):
        return
    if isinstance(expression, CombinedExpression) and expression.connector in _OPERATORS:
        check_computable(field, expression.lhs, model)
        check_computable(field, expression.rhs, model)
        expression.output_field  # noqa: B018 - Django's FieldError for mixed types, as its SQL
        return
    raise NotSupportedError(
        f"{field.name!r}: schemaless computes +, - and * of the model's own fields "
        f"and values, not {expression!r}"
    )


def evaluate(expression: Any, body: dict[str, Any]) -> Any:
    """The expression's value for one stored body; NULL in any operand gives NULL, as SQL."""
    if isinstance(expression, Value):
        return expression.value
    if isinstance(expression, Col):
        field = expression.target
        if field.column in body:
            return body[field.column]
        return to_body(field, field.get_default(), lookup=True)  # as a load reads it
    lhs, rhs = evaluate(expression.lhs, body), evaluate(expression.rhs, body)
    if lhs is None or rhs is None:
        return None
    try:
        if isinstance(lhs, decimal.Decimal) or isinstance(rhs, decimal.Decimal):
            lhs, rhs = (
                v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v)) for v in (lhs, rhs)
            )
        return _OPERATORS[expression.connector](lhs, rhs)
    except (TypeError, decimal.InvalidOperation) as exc:  # a body holding another type
        raise DataError(f"cannot compute {expression!r} on {lhs!r} and {rhs!r}: {exc}") from exc


def _matcher(name: str, pattern: str) -> Match:
    if name in ("regex", "iregex"):
        try:
            compiled = re.compile(pattern, re.IGNORECASE if name == "iregex" else 0)
        except re.error as exc:
            raise DataError(f"{name}: {pattern!r} is not a regular expression: {exc}") from exc
        return lambda s: compiled.search(s) is not None
    if name.startswith("i"):
        folded = _TEXT[name[1:]](pattern.casefold())
        return lambda s: folded(s.casefold())
    return _TEXT[name](pattern)
