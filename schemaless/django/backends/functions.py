"""Functions: what the compiler works out in Python that SQL would compute, Trunc and Min/Max.

``QuerySet.dates()`` and ``datetimes()`` (the admin's ``date_hierarchy`` calls them) select a
``Trunc`` of a date or datetime field, distinct, ordered by it. The store holds the field's
value, so the truncation is done on it here, in the zone Django's SQL would use (the Trunc's
``tzinfo``, else the current time zone), and handed to Trunc's own ``convert_value``. An order
by a Trunc is the order by its field: truncating never reverses two values.

``aggregate(Min(...), Max(...))`` (``date_hierarchy`` again) is the first entity of the query
in the field's order, NULLs skipped: an index that serves that order is read for one row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import DateTimeField, Max, Min
from django.db.models.expressions import Col
from django.db.models.functions.datetime import TruncBase
from django.utils import timezone

Getter = Callable[[Any], Any]
_TIME_KINDS: dict[str, Callable[[dt.datetime], dt.datetime]] = {
    "hour": lambda v: v.replace(minute=0, second=0, microsecond=0),
    "minute": lambda v: v.replace(second=0, microsecond=0),
    "second": lambda v: v.replace(microsecond=0),
}


def truncation(expression: Any) -> Col | None:
    """The field column a Trunc of one field truncates; None for anything else."""
    if isinstance(expression, TruncBase) and isinstance(expression.lhs, Col):
        return expression.lhs
    return None


def truncating(trunc: TruncBase, value_of: Getter) -> Getter:
    """A getter of ``trunc``'s value, from the getter of its field's value."""
    kind = str(trunc.kind)
    to_datetime = isinstance(trunc.output_field, DateTimeField)

    def get(entity: Any) -> Any:
        value = value_of(entity)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if settings.USE_TZ and timezone.is_aware(value):
                value = value.astimezone(trunc.tzinfo or timezone.get_current_timezone())
            if kind == "time":  # TruncTime: the time of day
                return value.replace(tzinfo=None).time()
            value = _floor_time(value.replace(tzinfo=None), kind)
            return value if to_datetime else value.date()
        return _floor_date(value, kind)

    return get


def extreme(aggregate: Any) -> tuple[Col, bool] | None:
    """(the field, largest?) of a Min or Max of one field; None for another aggregate."""
    if not isinstance(aggregate, Min | Max) or aggregate.filter:
        return None  # (Min and Max take no distinct=)
    source = aggregate.get_source_expressions()[0]
    if not isinstance(source, Col):
        return None
    return source, isinstance(aggregate, Max)


def _floor_time(value: dt.datetime, kind: str) -> dt.datetime:
    floor = _TIME_KINDS.get(kind)
    if floor is not None:
        return floor(value)
    day = _floor_date(value.date(), kind)
    return dt.datetime(day.year, day.month, day.day)


def _floor_date(value: dt.date, kind: str) -> dt.date:
    if kind == "year":
        return value.replace(month=1, day=1)
    if kind == "quarter":
        return value.replace(month=(value.month - 1) // 3 * 3 + 1, day=1)
    if kind == "month":
        return value.replace(day=1)
    if kind == "week":
        return value - dt.timedelta(days=value.weekday())
    return value  # day, or a time kind of a date: Django refuses those before this
