"""Condition: one ``field__lookup=value``, as SQL on an index column and as a check on a body.

The same condition is applied twice: as SQL on the index table, to find candidates, and in
Python on every entity fetched, so a stale index row never yields a wrong result. Both sides see
values normalized the same way (the index field's type: naive UTC datetimes, UUID bytes...).
A condition on a list field holds when any element matches; one made :meth:`with_default`
checks a body lacking its field as holding the default (what its index holds for that body).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from .errors import InvalidQuery
from .index import WrongType, normalize

LOOKUPS = ("exact", "in", "gt", "gte", "lt", "lte", "range", "startswith", "isnull")
RANGE_LOOKUPS = ("gt", "gte", "lt", "lte", "range", "startswith", "isnull")

Normalizer = Callable[[Any], Any]


class Condition:
    """``field__lookup=value``: immutable once made."""

    # A plain class with slots: every query makes its conditions, on the hot path.
    __slots__ = ("field", "lookup", "value", "default", "_normalized")

    def __init__(self, field: str, lookup: str, value: Any) -> None:
        self.field = field
        self.lookup = lookup
        self.value = value
        self.default: Any = None  # what a body lacking the field is checked as holding
        # The value as each index type holds it, made once: a query re-checks it on every entity.
        self._normalized: dict[str | None, Any] = {}

    @classmethod
    def parse(cls, key: str, value: Any) -> Condition:
        field, _, lookup = key.partition("__")
        if not lookup:
            return cls(field, "exact", value)  # any value can be compared for equality
        if lookup not in LOOKUPS:
            raise InvalidQuery(f"unknown lookup {lookup!r} in {key!r}; use one of {LOOKUPS}")
        value = _check_value(key, lookup, value)
        if lookup == "isnull" and value:
            return cls(field, "exact", None)  # an equality: it pins the field as exact does
        return cls(field, lookup, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return (self.field, self.lookup, self.value) == (other.field, other.lookup, other.value)

    def __hash__(self) -> int:
        return hash((self.field, self.lookup, self.value))

    def __repr__(self) -> str:
        return f"Condition({self.field!r}, {self.lookup!r}, {self.value!r})"

    def with_default(self, default: Any) -> Condition:
        """This condition checking a body that lacks the field as holding ``default``."""
        made = Condition(self.field, self.lookup, self.value)
        made.default = default
        return made

    @property
    def is_equality(self) -> bool:
        return self.lookup in ("exact", "in")

    @property
    def matches_nothing(self) -> bool:
        """An ``in`` of no values: no entity can match, so a query holding it sends no SQL."""
        return self.lookup == "in" and not self.value

    def normalized(self, kind: str | None) -> Any:
        """The value as the index column (of type ``kind``) holds it."""
        try:
            return self._normalized[kind]
        except KeyError:
            pass
        if self.lookup == "isnull":
            value: Any = self.value
        elif self.lookup in ("in", "range"):
            norm = _normalizer(kind, self.field)
            value = [norm(v) for v in self.value]
        elif self.lookup == "startswith" and kind is None:
            value = self.value
        else:
            # A prefix too: one the column cannot hold (no UTF-8 form) could not be bound.
            value = _loose(self.value) if kind is None else normalize(kind, self.value, self.field)
        self._normalized[kind] = value
        return value

    # -- SQL -----------------------------------------------------------------------------------

    def sql(self, kind: str | None) -> tuple[str, tuple[Any, ...]]:
        """The form this condition takes in SQL on a column of type ``kind``, and its values.

        The form and the number of values make the statement's shape, the values its
        parameters: a statement compiled once serves every query of the same shape.
        """
        value = self.normalized(kind)
        if self.lookup == "exact":
            return ("null", ()) if value is None else ("eq", (value,))
        if self.lookup == "in":
            present = tuple(v for v in value if v is not None)
            form = "in" if present else "none"
            return (f"{form}_or_null" if None in value else form), present
        if self.lookup == "isnull":  # parsed, isnull=True is exact None; made directly, either
            return ("null", ()) if self.value else ("any", ())
        if self.lookup == "startswith":
            if not value:
                return "any", ()
            # A range, not LIKE: LIKE ignores case on SQLite, and a range uses the index everywhere.
            end = _prefix_end(value)
            return ("prefix", (value, end)) if end is not None else ("gte", (value,))
        return self.lookup, tuple(value) if self.lookup == "range" else (value,)

    def clause(
        self, column: Any, kind: str | None, bind: Callable[[int, Any], Any] | None = None
    ) -> Any:
        """The condition as SQL on an index column of type ``kind``.

        ``bind(i, value)`` makes the parameter of the i-th value of :meth:`sql`; by default the
        values are bound as SQLAlchemy binds any literal.
        """
        form, values = self.sql(kind)
        params = [bind(i, v) for i, v in enumerate(values)] if bind else list(values)
        return _CLAUSES[form](column, params)

    # -- Python --------------------------------------------------------------------------------

    def matches(self, body: dict[str, Any], kind: str | None) -> bool:
        """Whether the body satisfies this condition (any element, for a list)."""
        value = body.get(self.field, self.default)
        if isinstance(value, list):
            if not value:
                return self.lookup == "exact" and self.value is None
            return any(self._holds(v, kind) for v in value)
        return self._holds(value, kind)

    def test(self, kind: str | None) -> Test:
        """This condition as a reader re-checks it on each body read through an index of type
        ``kind``: ``(condition, kind, field, value, type of value, default)``.

        A body holding exactly ``value`` under ``field`` (the common case for ``exact``) passes
        without a call; any other body is asked :meth:`matches`. Other lookups always ask.
        """
        if self.lookup == "exact":
            try:
                wanted = self.normalized(kind)
                return (self, kind, self.field, wanted, type(wanted), self.default)
            except WrongType:
                pass
        return (self, kind, self.field, _NOTHING, _Nothing, self.default)

    def _holds(self, raw: Any, kind: str | None) -> bool:
        if self.lookup == "isnull":
            return (raw is None) == self.value
        try:
            wanted = self.normalized(kind)
            if self.lookup == "exact" and type(raw) is type(wanted) and raw == wanted:
                return True  # what the index holds already: nothing to normalize
            value = _loose(raw) if kind is None else normalize(kind, raw, self.field)
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


class _Nothing:
    """The type no body value has: a test of it always asks ``matches``."""


_NOTHING = _Nothing()
Test = tuple[Condition, str | None, str, Any, type, Any]


def passes(body: dict[str, Any], tests: tuple[Test, ...]) -> bool:
    """Whether ``body`` satisfies every test (see :meth:`Condition.test`)."""
    for condition, kind, field, wanted, wanted_type, default in tests:
        value = body.get(field, default)
        plainly_equal = type(value) is wanted_type and value == wanted
        if not plainly_equal and not condition.matches(body, kind):
            return False
    return True


_CLAUSES: dict[str, Callable[[Any, list[Any]], Any]] = {
    "null": lambda column, _: column.is_(None),
    "eq": lambda column, p: column == p[0],
    "in": lambda column, p: column.in_(p),
    "in_or_null": lambda column, p: sa.or_(column.in_(p), column.is_(None)),
    "none": lambda column, _: sa.false(),
    "none_or_null": lambda column, _: sa.or_(sa.false(), column.is_(None)),
    "range": lambda column, p: column.between(p[0], p[1]),
    "prefix": lambda column, p: sa.and_(column >= p[0], column < p[1]),
    "any": lambda column, _: column.is_not(None),
    "gt": lambda column, p: column > p[0],
    "gte": lambda column, p: column >= p[0],
    "lt": lambda column, p: column < p[0],
    "lte": lambda column, p: column <= p[0],
}

_OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def _compare(lookup: str, value: Any, wanted: Any) -> bool:
    if lookup == "range":
        return bool(wanted[0] <= value <= wanted[1])
    if lookup == "startswith":
        return isinstance(value, str) and value.startswith(wanted)
    return bool(getattr(value, _OPERATORS[lookup])(wanted) is True)


def _prefix_end(prefix: str) -> str | None:
    """The least str above every str that starts with ``prefix`` (None: no str is above).

    The last character that is not U+10FFFF (the last code point) goes up by one, past the
    surrogates: no stored str holds one, and SQLite cannot bind one.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    last = ord(stem[-1]) + 1
    return stem[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)


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
        try:
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:  # no naive UTC near year 1 or 9999: compare it as it is
            return value
    return value


def _check_value(key: str, lookup: str, value: Any) -> Any:
    if lookup == "in":
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            raise InvalidQuery(f"{key!r} takes a list of values")
        return tuple(value)
    # None means "no value" (NULL) to exact and in alone: nothing is greater than it, starts
    # with it, or lies between it and another; SQL would answer nothing, or search for "None".
    if value is None:
        raise InvalidQuery(f"{key!r} cannot compare with None; use filter(field=None)")
    if lookup == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise InvalidQuery(f"{key!r} takes a (low, high) pair")
        if None in value:
            raise InvalidQuery(f"{key!r} cannot compare with None; use filter(field=None)")
        return tuple(value)
    if lookup == "startswith" and not isinstance(value, str):
        raise InvalidQuery(f"{key!r} takes a str")
    if lookup == "isnull" and not isinstance(value, bool):
        raise InvalidQuery(f"{key!r} takes True or False")
    return value
