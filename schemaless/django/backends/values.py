"""Field values as a body holds them, and the index type of each Django field.

A body keeps Python values (the codec round-trips datetimes, dates, Decimals, UUIDs), so a
value goes in through the field's own ``get_prep_value`` (Django's conversion: ``int()``,
``Decimal``, an aware datetime) and then through the few rules that a database column would
apply: NOT NULL, 64-bit integers, decimals rounded to ``decimal_places``, datetimes in UTC.
The same conversion serves lookups, so a filter compares what the body holds.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

from django.db import DataError, IntegrityError, NotSupportedError
from django.db.backends.utils import format_number

_INT_TYPES = (
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
)
_STR_TYPES = (
    "CharField",
    "TextField",
    "EmailField",
    "SlugField",
    "URLField",
    "GenericIPAddressField",
)
INDEX_TYPES: dict[str, str] = {
    **dict.fromkeys(_INT_TYPES, "int"),
    **dict.fromkeys(_STR_TYPES, "str"),
    "FloatField": "float",
    "BooleanField": "bool",
    "DateTimeField": "datetime",
    "UUIDField": "uuid",
    "BinaryField": "bytes",
}


def to_body(field: Any, value: Any, *, lookup: bool = False) -> Any:
    """``value`` of ``field`` as the body holds it; IntegrityError for a None in a NOT NULL
    field (unless it is a lookup's value), DataError for what no column could hold."""
    value = field.get_prep_value(value)
    if value is None:
        if not lookup and not field.null and not field.primary_key:
            table = field.model._meta.db_table if hasattr(field, "model") else "?"
            raise IntegrityError(f"NOT NULL constraint failed: {table}.{field.column}")
        return None
    adapt = _ADAPT.get(field.get_internal_type())
    if adapt is None or (lookup and adapt is _decimal):  # SQL compares a lookup's decimal as is
        return value
    if isinstance(value, list) and field.get_internal_type() == "ListField":
        return [to_body(field.base_field, v, lookup=True) for v in value]
    return adapt(field, value)


def converter(field: Any) -> Callable[[Any], Any]:
    """:func:`to_body` for one field, with what depends on the field alone worked out once:
    an insert converts each of its objects' values so."""
    adapt = _ADAPT.get(field.get_internal_type())
    if adapt is _list:
        return lambda value: to_body(field, value)
    prep = field.get_prep_value
    nullable = field.null or field.primary_key

    def convert(value: Any) -> Any:
        value = prep(value)
        if value is None:
            return None if nullable else to_body(field, value)  # to_body raises
        return value if adapt is None else adapt(field, value)

    return convert


def index_type(field: Any) -> str:
    """The store index type of a Django field, or NotSupportedError naming it."""
    internal = field.get_internal_type()
    if internal == "ListField":
        return index_type(field.base_field)
    if internal == "ForeignKey":
        return index_type(field.target_field)
    try:
        return INDEX_TYPES[internal]
    except KeyError:
        raise NotSupportedError(
            f"field {field.name!r} ({internal}) cannot be in a schemaless index; "
            f"indexable: {', '.join(sorted(set(INDEX_TYPES)))}"
        ) from None


def _int(field: Any, value: Any) -> int:
    if not -(2**63) <= value < 2**63:
        raise DataError(f"{field.name}: {value} is out of range for a 64-bit integer")
    return int(value)


def _decimal(field: Any, value: Any) -> decimal.Decimal:
    try:
        return decimal.Decimal(str(format_number(value, field.max_digits, field.decimal_places)))
    except decimal.InvalidOperation as exc:
        raise DataError(f"{field.name}: {value} does not fit max_digits") from exc


def _datetime(field: Any, value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc)
    return value


def _list(field: Any, value: Any) -> Any:
    return to_body(field.base_field, value, lookup=True)


_ADAPT: dict[str, Callable[[Any, Any], Any]] = {
    **dict.fromkeys(_INT_TYPES, _int),
    "DecimalField": _decimal,
    "DateTimeField": _datetime,
    "ListField": _list,
}
