"""Filter: a Django ``WhereNode`` as the store answers it.

The ANDed lookups on the model's own fields become the store's conditions (``exact``, ``in``,
``gt``, ``gte``, ``lt``, ``lte``, ``range``, ``startswith``, ``isnull``;
``__year`` and ``__date`` are ranges of their field); lookups on the pk restrict the answer to
those ids (fetched by id, no index needed). An OR of ``exact``/``in`` on one field is one
``in``. What is left, other ORs, negations (``exclude()``), text lookups
(``icontains``, ``regex``...), other date parts (``__month``) and comparisons with ``F()``
arithmetic become residual tests in Python on each entity (residual.py); an OR also keeps its
branches, for a union where no index drives the rest (``selection.py``). Joins, other
transforms, functions and expressions, and subqueries raise ``NotSupportedError`` here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.db import NotSupportedError
from django.db.models.expressions import Col
from django.db.models.functions import Extract, TruncDate
from django.db.models.lookups import IsNull, Lookup
from django.db.models.sql.constants import MULTI
from django.db.models.sql.query import Query
from django.db.models.sql.where import AND, NothingNode, WhereNode
from django.utils import timezone

from schemaless import Entity
from schemaless.lookups import Condition

from ..models import ListField
from .base import read_here
from .residual import (
    EXTRACTS,
    TEXT_LOOKUPS,
    as_range,
    check_computable,
    compared_test,
    element_type,
    extract_test,
    text_test,
)
from .values import INDEX_TYPES, to_body

LOOKUPS = ("exact", "in", "gt", "gte", "lt", "lte", "range", "startswith", "isnull")

Test = Callable[[Entity], bool]
# An int lookup value beyond 64 bits, as Django's IntegerFieldOverflow answers it: matching
# nothing or everything, by lookup, (below the range, above it).
NOTHING, EVERYTHING = "nothing", "everything"
_COMPARED = ("exact", "gt", "gte", "lt", "lte")  # with an expression (F()): residual
# ``tags__contains=["a", "b"]`` on a ListField: every element given is in the list (the
# meaning of Django's ArrayField); a str pattern is a text lookup on each element.
ALL_OF = "all_of"
# A lookup no index drives, made a test of one entity (residual.py): its value is that test.
RESIDUAL = "residual"
_OUT_OF_RANGE = {
    "exact": (NOTHING, NOTHING),
    "gt": (EVERYTHING, NOTHING),
    "gte": (EVERYTHING, NOTHING),
    "lt": (NOTHING, EVERYTHING),
    "lte": (NOTHING, EVERYTHING),
}


@dataclasses.dataclass
class Filter:
    """What a where tree asks: conditions for the store, ids, and residual tests."""

    conditions: list[Condition] = dataclasses.field(default_factory=list)
    ids: list[uuid.UUID] | None = None
    tests: list[Test] = dataclasses.field(default_factory=list)
    empty: bool = False
    # The branches of each OR among the tests, as filters of their own: where no index drives
    # the filter, one that drives every branch serves it as a union (selection.py).
    branches: list[list[Filter]] = dataclasses.field(default_factory=list)

    @classmethod
    def of(
        cls, where: WhereNode | None, model: Any, alias: str | None, using: str | None = None
    ) -> Filter:
        """The filter of ``where`` on ``model`` (table ``alias``); ``using``, the database
        alias, lets an ``__in`` take a queryset of it (read first, as a list)."""
        made = cls()
        if where is not None:
            made._add(where, _Context(model, alias, using))
        return made

    def passes(self, entity: Entity) -> bool:
        """Whether the entity satisfies every condition and test (ids are checked apart)."""
        body = entity._body
        return all(c.matches(body, None) for c in self.conditions) and all(
            test(entity) for test in self.tests
        )

    def _add(self, node: Any, context: _Context) -> None:
        if isinstance(node, NothingNode):
            self.empty = True
        elif isinstance(node, WhereNode):
            not_null = _not_null(node)
            if not_null is not None:  # exclude(rank=None): isnull=False, which an index drives
                self._add(not_null, context)
            elif node.negated or (node.connector != AND and len(node.children) > 1):
                one_in = None if node.negated else _one_in(node, context)
                if one_in is not None:
                    self._add_parts(*one_in)
                else:
                    self.tests.append(_test(node, context))
                    if not node.negated:
                        self.branches.append([_branch(child, context) for child in node.children])
            else:
                for child in node.children:
                    self._add(child, context)
        elif isinstance(node, Lookup):
            self._add_parts(*context.parts(node))
        else:
            raise NotSupportedError(f"a schemaless query cannot filter on {node!r}")

    def _add_parts(self, field: Any, name: str, value: Any) -> None:
        if name == NOTHING:
            self.empty = True
        elif name == EVERYTHING:
            return
        elif field.primary_key and name in ("exact", "in"):
            wanted = [value] if name == "exact" else list(value)
            if self.ids is not None:
                wanted = [i for i in self.ids if i in set(wanted)]
            self.ids = list(dict.fromkeys(wanted))
        elif field.primary_key or name == RESIDUAL:
            self.tests.append(_lookup_test(field, name, value))
        elif name == ALL_OF:  # one element an index drives, the others checked
            if value:
                self.conditions.append(Condition(field.column, "exact", value[0]))
                self.tests.append(_lookup_test(field, name, value[1:]))
        else:
            self.conditions.append(Condition.parse(f"{field.column}__{name}", value))


class _Context:
    """The model and table alias that lookups must name: anything else is a join."""

    def __init__(self, model: Any, alias: str | None, using: str | None = None) -> None:
        self.model = model
        self.alias = alias
        self.using = using

    def parts(self, lookup: Lookup) -> tuple[Any, str, Any]:
        """``(field, lookup name, value as the body holds it)``."""
        lhs, name, rhs = lookup.lhs, str(lookup.lookup_name), lookup.rhs
        if isinstance(lhs, (Extract, TruncDate)):
            return self._transformed(lookup)
        self._check_column(lhs)
        if (
            name == "contains"
            and isinstance(rhs, (list, tuple))
            and isinstance(lhs.target, ListField)
        ):
            base = lhs.target.base_field  # every element given is one of the list's
            return lhs.target, ALL_OF, tuple(to_body(base, v, lookup=True) for v in rhs)
        if _is_text(lhs.target, name) and not hasattr(rhs, "resolve_expression"):
            return lhs.target, RESIDUAL, text_test(lhs.target, name, rhs)
        if name not in LOOKUPS + TEXT_LOOKUPS:
            raise NotSupportedError(
                f"lookup {name!r} on {lhs.target.name!r} is not supported by schemaless; "
                f"use one of {', '.join(LOOKUPS + TEXT_LOOKUPS)}"
            )
        if name in _COMPARED and hasattr(rhs, "resolve_expression"):
            check_computable(lhs.target, rhs, self.model)
            return lhs.target, RESIDUAL, compared_test(lhs.target, name, rhs)
        if name == "in" and isinstance(rhs, Query):
            rhs = self._read(rhs)
        values = rhs if name in ("in", "range") and isinstance(rhs, (list, tuple)) else [rhs]
        if any(hasattr(v, "resolve_expression") for v in values):
            raise NotSupportedError(
                f"a schemaless filter on {lhs.target.name!r} compares with values, not "
                "expressions or subqueries"
            )
        if _beyond_64_bits(lhs.target, rhs) and name in _OUT_OF_RANGE:
            return lhs.target, _OUT_OF_RANGE[name][rhs > 0], None
        return lhs.target, name, _value(lhs.target, name, rhs)

    def _check_column(self, lhs: Any) -> None:
        if not isinstance(lhs, Col):
            raise NotSupportedError(
                f"a schemaless query cannot filter on {lhs!r} (a transform or function)"
            )
        if (self.alias is not None and lhs.alias != self.alias) or (
            lhs.target.model._meta.concrete_model is not self.model._meta.concrete_model
        ):
            raise NotSupportedError("a schemaless query cannot join across models")

    def _transformed(self, lookup: Lookup) -> tuple[Any, str, Any]:
        """A lookup on ``field__year``, ``field__date``, ``field__month``...: the first two as
        a range of the field (driven by its index), the others as a residual test."""
        transform, name, rhs = lookup.lhs, str(lookup.lookup_name), lookup.rhs
        part = "date" if isinstance(transform, TruncDate) else transform.lookup_name
        self._check_column(transform.lhs)
        if part not in EXTRACTS or hasattr(rhs, "resolve_expression"):
            raise NotSupportedError(f"a schemaless query cannot filter on {transform!r}")
        field = transform.lhs.target
        tz = transform.tzinfo or timezone.get_current_timezone()
        if name == "isnull":  # an extract of NULL is NULL, of anything else not
            return field, name, bool(rhs)
        ranged = as_range(field, part, name, rhs, tz)
        if ranged is not None:
            return field, ranged[0], _value(field, *ranged)
        return field, RESIDUAL, extract_test(field, part, name, rhs, tz)

    def _read(self, query: Query) -> list[Any]:
        """The values of an ``__in`` queryset (``filter(entry__in=Entry.objects.filter(...))``):
        there is no subquery, so it is read first, from the same database; another database's
        raises, as Django's own "Subqueries aren't allowed across different databases"."""
        using = getattr(query, "_db", None) or self.using
        if self.using is None or using != self.using or not read_here(query.model, using):
            raise NotSupportedError(
                "a schemaless __in takes a queryset of the same schemaless database only"
            )
        (rows,) = query.get_compiler(using=using).execute_sql(MULTI)
        return [row[0] for row in rows]


def _is_text(field: Any, name: str) -> bool:
    """Whether the lookup compares text in Python: a text lookup, or ``startswith`` on a field
    that is not text (SQL compares its text: ``rank__startswith=1``)."""
    if name == "startswith":
        return element_type(field) != "str"
    return name in TEXT_LOOKUPS


def _beyond_64_bits(field: Any, value: Any) -> bool:
    """Whether ``value`` is an int no integer field can hold (they all hold 64 bits here)."""
    return (
        isinstance(value, int)
        and not -(2**63) <= value < 2**63
        and INDEX_TYPES.get(field.get_internal_type()) == "int"
    )


def _value(field: Any, name: str, rhs: Any) -> Any:
    if name == "isnull":
        return bool(rhs)
    if name == "in":  # None is never equal to anything in SQL: Django drops it, and ints
        # beyond 64 bits equal nothing stored
        kept = (v for v in rhs if v is not None and not _beyond_64_bits(field, v))
        return tuple(to_body(field, v, lookup=True) for v in kept)
    if name == "range":
        return tuple(to_body(field, v, lookup=True) for v in rhs)
    return to_body(field, rhs, lookup=True)


def _not_null(node: WhereNode) -> Lookup | None:
    """``NOT (field IS NULL)`` (``exclude(rank=None)``) as ``field IS NOT NULL``; else None."""
    if not node.negated or len(node.children) != 1:
        return None
    (child,) = node.children
    if isinstance(child, IsNull) and child.rhs is True:
        return IsNull(child.lhs, False)
    return None


def _branch(node: Any, context: _Context) -> Filter:
    made = Filter()
    made._add(node, context)
    return made


def _one_in(node: WhereNode, context: _Context) -> tuple[Any, str, Any] | None:
    """An OR of ``exact`` and ``in`` lookups on one field (``filter(a=1) | filter(a=2)``,
    ``Q(a=1) | Q(a__in=[2, 3])``) as one ``in``, which an index can drive where an OR is a
    residual test; None for any other OR."""
    field, values = None, []
    for leaf in _or_leaves(node):
        if leaf is None:
            return None
        found, name, value = context.parts(leaf)
        if field is not None and found is not field:
            return None
        if name == "in":
            values.extend(value)
        elif name == "exact" and value is not None:  # exact None is isnull: no in holds it
            values.append(value)
        else:
            return None
        field = found
    return field, "in", tuple(values)


def _or_leaves(node: WhereNode) -> Iterator[Lookup | None]:
    """The lookups of an OR tree (nodes of one child count as their child); None for a part
    that is something else (an AND of two, a negation, a NothingNode)."""
    for child in node.children:
        if isinstance(child, Lookup):
            yield child
        elif isinstance(child, WhereNode) and not child.negated:
            if child.connector == AND and len(child.children) > 1:
                yield None
            else:
                yield from _or_leaves(child)
        else:
            yield None


def _test(node: WhereNode, context: _Context) -> Test:
    """A WhereNode as a test of one entity (AND/OR of its children, maybe negated)."""
    tests: list[Test] = []
    for child in node.children:
        if isinstance(child, NothingNode):
            tests.append(lambda _entity: False)
        elif isinstance(child, WhereNode):
            tests.append(_test(child, context))
        elif isinstance(child, Lookup):
            tests.append(_lookup_test(*context.parts(child)))
        else:
            raise NotSupportedError(f"a schemaless query cannot filter on {child!r}")
    combine = all if node.connector == AND else any
    if node.negated:
        return lambda entity: not combine(test(entity) for test in tests)
    return lambda entity: combine(test(entity) for test in tests)


def _lookup_test(field: Any, name: str, value: Any) -> Test:
    if name == RESIDUAL:
        return value
    if name == ALL_OF:
        each = [Condition(field.column, "exact", v) for v in value]
        return lambda entity: all(c.matches(entity._body, None) for c in each)
    if name in (NOTHING, EVERYTHING):
        return lambda _entity: name == EVERYTHING
    if field.primary_key:
        if name == "isnull":
            return lambda _entity: not value  # a stored entity always has its id
        on_id = Condition("id", name, value)
        return lambda entity: on_id.matches({"id": entity.id}, None)
    condition = Condition(field.column, name, value)
    return lambda entity: condition.matches(entity._body, None)
