"""Where: Django filter arguments (keywords and ``Q``) turned into the store's conditions.

A QuerySet holds its filter as ANDed :class:`Lookup` objects plus exclusions (each one ANDed
group, negated). Lookups on fields go to the store's planner; ``pk`` / ``id`` lookups are
answered by fetching those ids; exclusions, and everything when ids are given, are checked
against each fetched body with the store's own :class:`~schemaless.lookups.Condition`, so the
answer is the same either way. What cannot be answered exactly (joins, OR across fields,
transforms such as ``__year``) raises ``NotSupportedError`` here, before any query runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldError
from django.db import NotSupportedError
from django.db.models import Q

from schemaless import Entity, InvalidQuery
from schemaless.index import WrongType, normalize
from schemaless.lookups import LOOKUPS, Condition

from .fields import ListField

# Django's built-in lookups and transforms that the store cannot answer: named in the error.
DJANGO_LOOKUPS = frozenset(
    {
        *("iexact", "contains", "icontains", "istartswith", "endswith", "iendswith"),
        *("regex", "iregex", "search", "date", "year", "iso_year", "month", "day", "week"),
        *("week_day", "iso_week_day", "quarter", "time", "hour", "minute", "second"),
        *("contained_by", "overlap", "has_key", "has_keys", "has_any_keys", "len"),
    }
)


@dataclasses.dataclass(frozen=True)
class Lookup:
    """``field__lookup=value`` with the value as the body holds it (``id`` for the pk)."""

    field: str
    lookup: str
    value: Any

    @property
    def is_pk(self) -> bool:
        return self.field == "id"

    @property
    def keyword(self) -> str:
        return f"{self.field}__{self.lookup}"

    def condition(self) -> Condition:
        return Condition.parse(self.keyword, self.value)


def parse(opts: Any, key: str, value: Any) -> Lookup:
    """One keyword argument of filter(): resolve the field, the lookup and the value."""
    name, *rest = key.split("__")
    lookup = _lookup(key, rest)  # a join is refused before its first name is looked at
    field = opts.get_field("id" if name == "pk" else name) if _known(opts, name) else None
    if field is None:
        raise _unknown(opts, name)
    if field is opts.pk:
        return _pk_lookup(field, lookup, value)
    if lookup == "isnull":
        _check_isnull(key, value)
        return Lookup(field.name, "exact", None)
    return Lookup(field.name, lookup, _converted(field, key, lookup, value))


def flatten(
    opts: Any, args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[list[Lookup], list[tuple[Lookup, ...]]]:
    """filter(*args, **kwargs) as (ANDed lookups, negated groups)."""
    where = [parse(opts, k, v) for k, v in kwargs.items()]
    excluded: list[tuple[Lookup, ...]] = []
    for arg in args:
        if not isinstance(arg, Q):
            raise NotSupportedError(f"filter() takes keyword lookups and Q objects, not {arg!r}")
        more, negated = _from_q(opts, arg)
        where += more
        excluded += negated
    return where, excluded


def check_order_name(opts: Any, name: Any) -> None:
    """An order_by() argument: a body field, ``-`` for descending; no pk, joins or ``?``."""
    if not isinstance(name, str):
        raise NotSupportedError("order_by() takes field names, not expressions")
    field = name.lstrip("-")
    if field == "?":
        raise NotSupportedError("random ordering ('?') is not supported by schemaless")
    if "__" in field:
        raise NotSupportedError(f"order_by({name!r}): joins are not supported by schemaless")
    if field in ("pk", "id"):
        raise NotSupportedError(
            f"order_by({name!r}): ids are random UUIDs; order by an indexed field instead"
        )
    if field not in opts._by_name:
        raise _unknown(opts, field)


def value_names(opts: Any, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The names values() / values_list() return (every field when none is given)."""
    for name in fields:
        if "__" in name:
            raise NotSupportedError(f"values({name!r}): joins are not supported by schemaless")
        if name != "pk" and name not in opts._by_name:
            raise _unknown(opts, name)
    return tuple(fields) or tuple(opts.field_names)


def matches(entity: Entity, where: Iterable[Lookup], types: dict[str, str | None]) -> bool:
    """Whether the entity's body satisfies every lookup, as the store's re-check decides."""
    for lookup in where:
        if lookup.is_pk:
            ids = lookup.value if lookup.lookup == "in" else (lookup.value,)
            if entity.id not in ids:
                return False
        elif not lookup.condition().matches(
            {lookup.field: entity.get(lookup.field)}, types.get(lookup.field)
        ):
            return False
    return True


def sort(entities: list[Entity], order: Sequence[str], types: dict[str, str | None]) -> None:
    """Sort in place by body fields, NULLs first ascending (as the indexes sort)."""
    for name in reversed(order):
        desc, field = name.startswith("-"), name.lstrip("-")
        entities.sort(key=lambda e: _sort_key(e.get(field), types.get(field), desc), reverse=desc)


# -- internals ---------------------------------------------------------------------------------


def _unknown(opts: Any, name: str) -> FieldError:
    choices = ", ".join(sorted(["pk", *opts.field_names]))
    return FieldError(f"Cannot resolve keyword '{name}' into field. Choices are: {choices}")


def _known(opts: Any, name: str) -> bool:
    return name == "pk" or name in opts._by_name


def _lookup(key: str, rest: list[str]) -> str:
    if not rest:
        return "exact"
    if len(rest) == 1 and (rest[0] in LOOKUPS or rest[0] == "isnull"):
        return rest[0]
    if rest[0] in DJANGO_LOOKUPS:
        raise NotSupportedError(
            f"{key!r}: the {rest[0]!r} lookup cannot be served by an index; "
            f"schemaless supports {', '.join(LOOKUPS)} and isnull=True"
        )
    raise NotSupportedError(
        f"{key!r}: joins (traversing '__' into another model) are not supported by schemaless"
    )


def _pk_lookup(field: Any, lookup: str, value: Any) -> Lookup:
    if lookup == "exact":
        return Lookup("id", "exact", None if value is None else _uuid(field, value))
    if lookup == "in":
        return Lookup("id", "in", tuple(_uuid(field, v) for v in value if v is not None))
    raise NotSupportedError(f"pk__{lookup}: ids are random UUIDs; only pk= and pk__in= are served")


def _uuid(field: Any, value: Any) -> uuid.UUID:
    value = getattr(value, "pk", value)  # a model instance stands for its id, as in Django
    return field.to_python(value)


def _check_isnull(key: str, value: Any) -> None:
    """isnull=True is ``= None``; isnull=False has no index to serve it."""
    if value is True:
        return
    if value is False:
        raise NotSupportedError(f"{key}=False: no index serves 'is not null'; filter on a value")
    raise ValueError("The QuerySet value for an isnull lookup must be True or False.")


def _converted(field: Any, key: str, lookup: str, value: Any) -> Any:
    """The value in body form, through the field's own conversion (Django's get_prep_value)."""
    item = field.base_field if isinstance(field, ListField) else field
    if hasattr(value, "resolve_expression"):
        raise NotSupportedError(f"{key!r}: expressions (F, subqueries ...) are not supported")
    if value is None and lookup != "exact":
        # Django's rule and message; before any conversion, which would make None the text "None".
        raise InvalidQuery(f"{key!r}: Cannot use None as a query value")
    if lookup == "in":
        return [item.to_body(v) for v in value if v is not None]
    if lookup == "range":
        low, high = value
        return (item.to_body(low), item.to_body(high))
    if lookup == "startswith":
        return str(value)
    if value is None:
        return None
    if isinstance(field, ListField) and isinstance(value, (list, tuple)):
        raise NotSupportedError(
            f"{key!r}: a ListField is compared with one element (matching any); "
            "use __in for several"
        )
    return item.to_body(value)


def _from_q(opts: Any, q: Q) -> tuple[list[Lookup], list[tuple[Lookup, ...]]]:
    if q.connector not in (Q.AND, Q.OR):
        raise NotSupportedError(f"Q objects joined with {q.connector} are not supported")
    if q.negated:
        return [], _negated(opts, q)
    if q.connector == Q.OR and len(q.children) > 1:
        return [_or_as_in(opts, q)], []
    where: list[Lookup] = []
    excluded: list[tuple[Lookup, ...]] = []
    for child in q.children:
        if isinstance(child, Q):
            more, negated = _from_q(opts, child)
            where += more
            excluded += negated
        else:
            where.append(parse(opts, *child))
    return where, excluded


def _negated(opts: Any, q: Q) -> list[tuple[Lookup, ...]]:
    """~Q(a, b) excludes (a AND b); ~Q(a | b) excludes a and excludes b."""
    if any(isinstance(child, Q) for child in q.children):
        raise NotSupportedError("a negated Q may hold only keyword lookups")
    lookups = [parse(opts, *child) for child in q.children]
    if not lookups:
        return []
    return [(lk,) for lk in lookups] if q.connector == Q.OR else [tuple(lookups)]


def _or_as_in(opts: Any, q: Q) -> Lookup:
    """Q(f=a) | Q(f=b) is f__in=[a, b]; any other OR cannot be served by one index."""
    lookups = [parse(opts, *leaf) for leaf in _leaves(q)]
    fields = {lk.field for lk in lookups}
    if len(fields) != 1 or any(lk.lookup not in ("exact", "in") for lk in lookups):
        raise NotSupportedError(
            "OR is served only between equalities on one field (an 'in'); "
            "run one query per branch instead"
        )
    values: list[Any] = []
    for lk in lookups:
        values += list(lk.value) if lk.lookup == "in" else [lk.value]
    return Lookup(fields.pop(), "in", tuple(values) if lookups[0].is_pk else values)


def _leaves(q: Q) -> list[tuple[str, Any]]:
    leaves = []
    for child in q.children:
        if not isinstance(child, Q):
            leaves.append(child)
        elif child.negated or (child.connector == Q.AND and len(child.children) > 1):
            raise NotSupportedError("OR of negated or ANDed branches cannot be served")
        else:
            leaves += _leaves(child)
    return leaves


def _sort_key(value: Any, kind: str | None, desc: bool) -> tuple[Any, ...]:
    values = value if isinstance(value, list) else [value]
    keys = [_value_key(v, kind) for v in values] or [(0,)]
    return max(keys) if desc else min(keys)


def _value_key(value: Any, kind: str | None) -> tuple[Any, ...]:
    if value is None:
        return (0,)
    try:
        return (1, normalize(kind, value) if kind else _utc(value))
    except WrongType:
        return (1, _utc(value))


def _utc(value: Any) -> Any:
    """Aware datetimes as naive UTC, so that they sort with naive ones as the indexes do."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value
