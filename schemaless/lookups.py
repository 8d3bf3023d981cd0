"""Condition: one ``field__lookup=value``, as SQL on an index column and as a check on a body.

The same condition is applied twice: as SQL on the index table, to find candidates, and in
Python on every entity fetched, so a stale index row never yields a wrong result. Both sides see
values normalized the same way (the index field's type: naive UTC datetimes, UUID bytes...).
A condition on a list field holds when any element matches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from .errors import InvalidQuery
from .index import WrongType, normalize

LOOKUPS = ("exact", "in", "gt", "gte", "lt", "lte", "range", "startswith")
RANGE_LOOKUPS = ("gt", "gte", "lt", "lte", "range", "startswith")

Normalizer = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Condition:
    """``field__lookup=value``."""

    field: str
    lookup: str
    value: Any

    @classmethod
    def parse(cls, key: str, value: Any) -> Condition:
        field, _, lookup = key.partition("__")
        lookup = lookup or "exact"
        if lookup not in LOOKUPS:
            raise InvalidQuery(f"unknown lookup {lookup!r} in {key!r}; use one of {LOOKUPS}")
        return cls(field, lookup, _check_value(key, lookup, value))

    @property
    def is_equality(self) -> bool:
        return self.lookup in ("exact", "in")

    def normalized(self, kind: str | None) -> Any:
        """The value as the index column (of type ``kind``) holds it."""
        norm = _normalizer(kind, self.field)
        if self.lookup in ("in", "range"):
            return [norm(v) for v in self.value]
        return self.value if self.lookup == "startswith" else norm(self.value)

    # -- SQL -----------------------------------------------------------------------------------

    def clause(self, column: Any, kind: str | None) -> Any:
        value = self.normalized(kind)
        if self.lookup == "exact":
            return column.is_(None) if value is None else column == value
        if self.lookup == "in":
            present = [v for v in value if v is not None]
            clause = column.in_(present) if present else sa.false()
            return sa.or_(clause, column.is_(None)) if None in value else clause
        if self.lookup == "range":
            return column.between(value[0], value[1])
        if self.lookup == "startswith":
            return _prefix_clause(column, value)
        return getattr(column, _OPERATORS[self.lookup])(value)

    # -- Python --------------------------------------------------------------------------------

    def matches(self, body: dict[str, Any], kind: str | None) -> bool:
        """Whether the body satisfies this condition (any element, for a list)."""
        value = body.get(self.field)
        if isinstance(value, list):
            if not value:
                return self.lookup == "exact" and self.value is None
            return any(self._holds(v, kind) for v in value)
        return self._holds(value, kind)

    def _holds(self, raw: Any, kind: str | None) -> bool:
        try:
            value, wanted = _normalizer(kind, self.field)(raw), self.normalized(kind)
        except WrongType:
            return False
        if self.lookup == "exact":
            return _same(value, wanted)
        if self.lookup == "in":
            return any(_same(value, w) for w in wanted)
        if value is None:
            return False
        try:
            return _compare(self.lookup, value, wanted)
        except TypeError:
            return False


_OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def _compare(lookup: str, value: Any, wanted: Any) -> bool:
    if lookup == "range":
        return bool(wanted[0] <= value <= wanted[1])
    if lookup == "startswith":
        return isinstance(value, str) and value.startswith(wanted)
    return bool(getattr(value, _OPERATORS[lookup])(wanted) is True)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # True == 1 in Python, but they are different index values
    return bool(a == b)


def _normalizer(kind: str | None, field: str) -> Normalizer:
    if kind is None:
        return _loose
    return lambda value: normalize(kind, value, field)


def _loose(value: Any) -> Any:
    """A full scan's normalization: only datetimes, so aware and naive (as UTC) compare."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _prefix_clause(column: Any, prefix: str) -> Any:
    # A range, not LIKE: LIKE ignores case on SQLite, and a range uses the index everywhere.
    if not prefix:
        return column.is_not(None)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return sa.and_(column >= prefix, column < upper)


def _check_value(key: str, lookup: str, value: Any) -> Any:
    if lookup == "in":
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            raise InvalidQuery(f"{key!r} takes a list of values")
        return tuple(value)
    if lookup == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise InvalidQuery(f"{key!r} takes a (low, high) pair")
        return tuple(value)
    if lookup == "startswith" and not isinstance(value, str):
        raise InvalidQuery(f"{key!r} takes a str")
    if lookup in ("gt", "gte", "lt", "lte") and value is None:
        raise InvalidQuery(f"{key!r} cannot compare with None")
    return value
