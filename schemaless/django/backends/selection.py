"""Selection: the entities a Django query selects, found through the core planner.

The :class:`~.where.Filter`'s conditions and tests go to ``store.query(kind)``, whose planner
picks the index that drives the most of them: the others are residual, checked on the entities
it yields, at most ``MAX_EXAMINED`` of them (then ``IndexRequired``), all in the core. An order
an index serves is pushed down with the slice; any other order (``order_by("pk")``, mixed
directions, a field no index orders) sorts in memory the entities found, at most
``MAX_EXAMINED`` of them. A filter of which no index can drive any condition raises
``IndexRequired`` (a ``FieldError``). Lookups on the pk are answered by id, with no index.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from django.db import NotSupportedError

from schemaless import Entity
from schemaless import IndexNotReady as StoreIndexNotReady
from schemaless import IndexRequired as StoreIndexRequired
from schemaless.query import Query

from .errors import IndexRequired, mapped
from .where import Filter

PK = "pk"  # an order on the entity id


class Order(NamedTuple):
    key: str  # a body field, or PK
    descending: bool
    # NULLs where SQL puts them by default (first ascending, last descending), or the other
    # end: ``F(key).asc(nulls_last=True)``, which no index order serves (sorted in memory).
    nulls_moved: bool = False


class Selection:
    """Entities of one kind matching a Filter, in an Order, sliced ``[low:high]``."""

    def __init__(
        self,
        connection: Any,
        kind: str,
        where: Filter,
        order: Sequence[Order] = (),
        low: int = 0,
        high: int | None = None,
    ) -> None:
        self.store = connection.store
        self.max_examined = connection.schemaless.max_examined
        self.kind = kind
        self.where = where
        self.order = list(order)
        self.low, self.high = low, high

    def entities(self) -> list[Entity]:
        with mapped():
            return self._entities()

    def count(self) -> int:
        """How many match: from the index alone when it drives every condition."""
        with mapped():
            where = self.where
            if where.empty or where.ids is not None:
                return len(self._entities())
            if self._union_needed():
                return len(self._union())
            return self._query()[self.low : self.high].count()

    def extreme(self, key: str, largest: bool) -> Any:
        """The largest or smallest value of ``key`` among the matches, NULLs skipped (Max,
        Min): the first match in that order, read through an index that serves the order
        with the filter; NotSupportedError where none does (as for any other aggregate)."""
        present = dataclasses.replace(self.where, tests=[*self.where.tests, _present(key)])
        first = copy.copy(self)
        first.where, first.order, first.low, first.high = present, [Order(key, largest)], 0, 1
        with mapped():
            found = first._first()
        return _value(found[0], key) if found else None

    def values_of(self, key: str) -> list[Any]:
        """The non-NULL values of ``key`` among the matches (``Count(field)``), read from the
        entities: at most MAX_EXAMINED of them, then ``IndexRequired``."""
        with mapped():
            if self.where.empty or self.where.ids is not None:
                found = self._entities()
            elif self._union_needed():
                found = self._union()
            else:
                why = (
                    f"would read over {self.max_examined} entities (MAX_EXAMINED) to count "
                    f"the values of {key!r}; count() of the rows reads the index alone"
                )
                found = self._bounded(self._query(), why)
        return [value for e in found if (value := _value(e, key)) is not None]

    def _first(self) -> list[Entity]:
        if self.where.empty or self.where.ids is not None:
            return self._entities()  # the ids' entities, sorted in memory
        ordered = self._ordered(self._query())
        if ordered is None:
            (order,) = self.order
            name = "Max" if order.descending else "Min"
            raise NotSupportedError(
                f"{name}({order.key}) of {self.kind!r}: schemaless answers Min and Max through "
                f"an index that orders by {order.key} (with the query's filter), and none does"
            )
        return list(ordered[:1])

    # -- the ways in -----------------------------------------------------------------------

    def _entities(self) -> list[Entity]:
        where = self.where
        if where.empty:
            return []
        if where.ids is not None:
            found = self.store.get_many(where.ids)
            matching = [
                e
                for e in (found.get(i) for i in where.ids)
                if e is not None and e.kind == self.kind and where.passes(e)
            ]
            return self._sliced(self._sorted(matching) if self.order else matching)
        if self._union_needed():
            return self._union()
        query = self._query()
        if self.order:
            ordered = self._ordered(query)
            if ordered is None:
                return self._sliced(self._sorted(self._all(query)))
            query = ordered
        return list(query[self.low : self.high])

    def _union_needed(self) -> bool:
        """Whether the filter has an OR, and no index drives the filter without it."""
        if not self.where.branches:
            return False
        try:
            self._query().plan()
        except StoreIndexRequired:
            return True
        return False

    def _union(self) -> list[Entity]:
        """The matches of a filter with an OR that no index drives as a whole: each branch of
        the first OR read as a query of its own (with the rest of the filter, the OR itself
        among its tests), merged by id, then ordered in memory and sliced. At most
        MAX_EXAMINED entities in all; a branch no index drives raises ``IndexRequired``."""
        found: dict[Any, Entity] = {}
        rest = self.where
        for branch in rest.branches[0]:
            if branch.empty:
                continue
            part = copy.copy(self)
            part.where = Filter(
                conditions=[*rest.conditions, *branch.conditions],
                ids=branch.ids,
                tests=[*rest.tests, *branch.tests],
            )
            part.order, part.low, part.high = [], 0, self.max_examined + 1
            for entity in part._entities():
                found.setdefault(entity.id, entity)
            if len(found) > self.max_examined:
                raise IndexRequired(
                    f"a query of {self.kind!r} with an OR would read over {self.max_examined} "
                    "entities (MAX_EXAMINED), one query per branch of the OR"
                )
        matching = list(found.values())
        return self._sliced(self._sorted(matching) if self.order else matching)

    def _query(self) -> Query:
        """The store's query of the filter's conditions and tests, bounded by MAX_EXAMINED."""
        query = self.store.query(self.kind)
        # As few filter() calls as the keys allow (two conditions on a key need two): the
        # first names every field, as the store checks that some index holds one.
        batches: list[dict[str, Any]] = []
        for c in self.where.conditions:
            key = c.field if c.lookup == "exact" else f"{c.field}__{c.lookup}"  # exact takes None
            batch = next((b for b in batches if key not in b), None)
            if batch is None:
                batches.append(batch := {})
            batch[key] = c.value
        for batch in batches:
            query = query.filter(**batch)
        for test in self.where.tests:
            query = query.check(test)
        return query.max_examined(self.max_examined)

    def _ordered(self, query: Query) -> Query | None:
        """The query in the order asked, when an index serves it with the filter; else None."""
        if any(o.key == PK or o.nulls_moved for o in self.order):
            return None
        if len({o.descending for o in self.order}) > 1:
            return None
        try:
            ordered = query.order_by(*[("-" if o.descending else "") + o.key for o in self.order])
            ordered.plan()
        except (StoreIndexRequired, StoreIndexNotReady):
            return None
        return ordered

    def _all(self, query: Query) -> list[Entity]:
        """Every entity the query selects, to sort in memory: IndexRequired past MAX_EXAMINED."""
        keys = ", ".join(o.key for o in self.order)
        fields = ", ".join(dict.fromkeys([c.field for c in self.where.conditions]))
        why = (
            f"would sort over {self.max_examined} entities (MAX_EXAMINED) in memory by {keys}; "
            f"an index on ({fields}) in that order would serve it"
        )
        return self._bounded(query, why)

    def _bounded(self, query: Query, why: str) -> list[Entity]:
        """Every entity the query selects, at most MAX_EXAMINED: past it, IndexRequired saying
        ``why`` the query would read them all."""
        found = list(query[: self.max_examined + 1])
        if len(found) > self.max_examined:
            raise IndexRequired(f"a query of {self.kind!r} {why}")
        return found

    # -- in memory -------------------------------------------------------------------------

    def _sorted(self, entities: list[Entity]) -> list[Entity]:
        """Sorted as SQL sorts: NULL first ascending, last descending (unless the order moved
        them); key by key."""
        for key, descending, nulls_moved in reversed(self.order):
            nulls = (2,) if nulls_moved else (0,)  # sorts before (1, value), or after it
            by = functools.partial(_sortable, key=key, nulls=nulls)
            entities.sort(key=by, reverse=descending)
        return entities

    def _sliced(self, entities: list[Entity]) -> list[Entity]:
        return entities[self.low : self.high]


def _sortable(entity: Entity, key: str, nulls: tuple[int] = (0,)) -> tuple[Any, ...]:
    value = _value(entity, key)
    return nulls if value is None else (1, value)


def _value(entity: Entity, key: str) -> Any:
    return entity.id if key == PK else entity._body.get(key)


def _present(key: str) -> Callable[[Entity], bool]:
    return lambda entity: _value(entity, key) is not None
