"""Selection: the entities a Django query selects, found through the core planner.

The :class:`~.where.Filter`'s conditions go to ``store.query(kind)``. When no index holds them
all, the index that drives the most of them serves, and the others are residual: checked on
each entity it yields, at most ``MAX_EXAMINED`` of them (then ``IndexRequired``). An order the
index serves is pushed down with the slice; any other order (``order_by("pk")``, mixed
directions, a field no index orders) sorts in memory the entities found, bounded the same way.
A filter of which no index can drive any condition raises ``IndexRequired`` (a ``FieldError``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from schemaless import Entity
from schemaless import IndexNotReady as StoreIndexNotReady
from schemaless import IndexRequired as StoreIndexRequired
from schemaless.lookups import Condition
from schemaless.planner import choose
from schemaless.query import Query

from .errors import IndexRequired, mapped
from .where import Filter

PK = "pk"  # an order on the entity id
_FIRST_PAGE = 100
_MAX_PAGE = 1000


class Order(NamedTuple):
    key: str  # a body field, or PK
    descending: bool


class _Plan(NamedTuple):
    driven: list[Condition]
    residual: list[Condition]
    order: tuple[str, ...] | None  # the order the store is asked for
    pushed: bool  # the store returns them in the order asked


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
            if where.empty or where.ids is not None or where.tests:
                return len(self._entities())
            plan = self._plan(ordered=False)
            if plan.residual:
                return len(self._entities())
            return self._query(plan).count() if self.high is None else len(self._entities())

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
        plan = self._plan(ordered=True)
        query = self._query(plan)
        if plan.pushed and not plan.residual and not where.tests:
            return list(query[self.low : self.high])
        need = self.high if plan.pushed else None
        found = list(self._examined(query, plan, need))
        return self._sliced(found if plan.pushed else self._sorted(found))

    def _query(self, plan: _Plan) -> Query:
        query = self.store.query(self.kind)
        for c in plan.driven:
            key = c.field if c.lookup == "exact" else f"{c.field}__{c.lookup}"  # exact takes None
            query = query.filter(**{key: c.value})
        if plan.order:
            query = query.order_by(*plan.order)
        return query

    def _examined(self, query: Query, plan: _Plan, need: int | None) -> Iterator[Entity]:
        """The entities ``query`` yields that pass the residual conditions and tests, read in
        keyset pages; IndexRequired once more than ``max_examined`` were read."""
        examined = found = 0
        page_size = _FIRST_PAGE
        page = list(query[:page_size])
        while page:
            for entity in page:
                examined += 1
                if examined > self.max_examined:
                    raise IndexRequired(self._too_many(plan))
                if all(c.matches(entity._body, None) for c in plan.residual) and all(
                    test(entity) for test in self.where.tests
                ):
                    found += 1
                    yield entity
                    if need is not None and found >= need:
                        return
            if len(page) < page_size:
                return
            page_size = min(page_size * 2, _MAX_PAGE)
            page = list(query.after(page[-1])[:page_size])

    # -- planning --------------------------------------------------------------------------

    def _plan(self, *, ordered: bool) -> _Plan:
        """The conditions an index drives, the residual ones, whether the order is pushed.

        Every condition driven beats an order pushed down; among subsets, the one an index
        drives most of wins. A query with no condition lists the kind (no index needed).
        """
        conditions = self.where.conditions
        needs_order = ordered and bool(self.order)
        order = self._store_order() if needs_order else None
        entries = self.store.registry.snapshot(max_age=1.0)
        attempts = [(conditions, order), (conditions, None)]
        fields = {c.field for c in conditions}
        for entry in entries:
            index = entry.index
            if entry.is_live and index.kind == self.kind and fields & set(index.fields):
                subset = [
                    c for c in conditions if c.field in index.fields or c.field in index.where
                ]
                attempts += [(subset, order), (subset, None)]
        best: _Plan | None = None
        first_error: Exception | None = None
        for subset, wanted in attempts:
            try:
                choose(self.kind, subset, wanted or (), entries)
            except (StoreIndexRequired, StoreIndexNotReady) as exc:
                first_error = first_error or exc
                continue
            if subset or not conditions:
                residual = [c for c in conditions if c not in subset]
                made = _Plan(list(subset), residual, wanted, wanted is not None or not needs_order)
                if best is None or _rank(made) > _rank(best):
                    best = made
        if (
            best is None
            or (conditions and not best.driven)
            or (self.where.tests and not best.driven)
        ):
            if isinstance(first_error, StoreIndexNotReady):
                raise first_error
            raise IndexRequired(str(first_error) if first_error else self._no_index())
        return best

    def _store_order(self) -> tuple[str, ...] | None:
        """The order as the store takes it, or None when it cannot (pk, mixed directions)."""
        if any(o.key == PK for o in self.order) or len({o.descending for o in self.order}) > 1:
            return None
        return tuple(("-" if o.descending else "") + o.key for o in self.order)

    # -- in memory -------------------------------------------------------------------------

    def _sorted(self, entities: list[Entity]) -> list[Entity]:
        """Sorted as SQL sorts: NULL first ascending, last descending; key by key."""
        for key, descending in reversed(self.order):
            entities.sort(key=functools.partial(_sortable, key=key), reverse=descending)
        return entities

    def _sliced(self, entities: list[Entity]) -> list[Entity]:
        return entities[self.low : self.high]

    def _too_many(self, plan: _Plan) -> str:
        residual = ", ".join(f"{c.field}__{c.lookup}" for c in plan.residual) or "the order"
        fields = ", ".join(dict.fromkeys([c.field for c in self.where.conditions]))
        return (
            f"a query of {self.kind!r} examined over {self.max_examined} entities (MAX_EXAMINED) "
            f"checking {residual}; an index on ({fields}) would serve it"
        )

    def _no_index(self) -> str:
        return f"no index of {self.kind!r} can drive this query; add one"


def _rank(plan: _Plan) -> tuple[int, bool]:
    return (len(plan.driven), plan.pushed)


def _sortable(entity: Entity, key: str) -> tuple[Any, ...]:
    value = entity.id if key == PK else entity._body.get(key)
    return (0,) if value is None else (1, value)
