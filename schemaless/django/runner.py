"""Runner: runs what a QuerySet says against the store, and shapes the rows it returns.

A QuerySet is only a :class:`State`; the runner decides the route. Lookups on the pk fetch
those ids (``store.get_many``) and finish in memory, since the set is already small; anything
else is one ``store.query(kind)``, its slice pushed down, unless exclusions must be checked
on the bodies first, in which case the query is read in keyset pages. Nothing here scans a
kind that the store's planner would refuse to: its ``IndexRequired`` / ``IndexNotReady`` pass.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

from django.db.models.utils import create_namedtuple_class

import schemaless
from schemaless import Entity

from .conf import get_store
from .fields import ListField
from .where import Lookup, matches, sort

CHUNK_SIZE = 2000


@dataclasses.dataclass(frozen=True)
class State:
    """Everything a QuerySet says, so that a clone is one ``dataclasses.replace``."""

    where: tuple[Lookup, ...] = ()
    excluded: tuple[tuple[Lookup, ...], ...] = ()
    order: tuple[str, ...] | None = None  # None: the model's Meta.ordering
    reversed: bool = False
    low: int = 0
    high: int | None = None
    empty: bool = False
    fields: tuple[str, ...] | None = None
    shape: str = "model"  # model, dict, tuple, flat or named

    @property
    def sliced(self) -> bool:
        return self.low != 0 or self.high is not None


class Runner:
    """Runs one State of one model."""

    def __init__(self, model: Any, state: State) -> None:
        self.model, self.state = model, state
        self.types = {f.name: f.index_type for f in model._meta.body_fields}

    def entities(self) -> Iterator[Entity]:
        """The matching entities, ordered and sliced, by the cheapest exact route."""
        st = self.state
        if st.empty:
            return iter(())
        ids = self.pk_ids()
        if ids is not None:
            return iter(self._by_ids(ids))
        if st.excluded:
            return itertools.islice(self._pages(CHUNK_SIZE), st.low, st.high)
        return iter(self.query())

    def stream(self, chunk: int) -> Iterator[Entity]:
        """The matches for iterator(): bounded sets at once, anything else in keyset pages."""
        if self.state.sliced or self.state.empty or self.pk_ids() is not None:
            return self.entities()
        return self._pages(chunk)

    def needs_bodies(self) -> bool:
        """Whether counting must read the entities (the index alone cannot tell)."""
        return bool(self.state.excluded) or self.pk_ids() is not None

    def pk_ids(self) -> list[Any] | None:
        """The ids that pk lookups allow (their intersection), or None when none is given."""
        ids: list[Any] | None = None
        for lookup in self.state.where:
            if lookup.is_pk:
                values = lookup.value if lookup.lookup == "in" else (lookup.value,)
                allowed = [v for v in values if v is not None]
                ids = allowed if ids is None else [i for i in ids if i in set(allowed)]
        return None if ids is None else list(dict.fromkeys(ids))

    def query(self, *, ordered: bool = True, sliced: bool = True) -> schemaless.Query:
        """The store query of the field lookups (its planner picks the index when it runs)."""
        st = self.state
        query = get_store().query(self.model._meta.kind)
        for batch in _batches([lk for lk in st.where if not lk.is_pk]):
            query = query.filter(**batch)
        order = self.order() if ordered else ()
        if order:
            query = query.order_by(*order)
        if sliced and st.sliced:
            query = query[st.low : st.high]
        return query

    def order(self) -> tuple[str, ...]:
        """The order asked for, else Meta.ordering; flipped by reverse()."""
        st = self.state
        order = st.order if st.order is not None else self.model._meta.ordering
        if st.reversed:
            order = tuple(n[1:] if n.startswith("-") else f"-{n}" for n in order)
        return tuple(order)

    def rows(self, entities: Iterator[Entity]) -> Iterator[Any]:
        """Instances, or the dicts / tuples / values that values() and values_list() ask for."""
        st = self.state
        objs = map(self.model.from_entity, entities)
        names = st.fields or ()
        if st.shape == "model":
            return objs
        if st.shape == "dict":
            return ({n: getattr(o, n) for n in names} for o in objs)
        if st.shape == "flat":
            return (getattr(o, names[0]) for o in objs)
        if st.shape == "named":
            row = create_namedtuple_class(*names)
            return (row(*(getattr(o, n) for n in names)) for o in objs)
        return (tuple(getattr(o, n) for n in names) for o in objs)

    # -- routes --------------------------------------------------------------------------------

    def _by_ids(self, ids: list[Any]) -> list[Entity]:
        """Fetch by id, then filter, order and slice in memory."""
        found = get_store().get_many(ids) if ids else {}
        kind = self.model._meta.kind
        others = [lk for lk in self.state.where if not lk.is_pk]
        entities = [
            found[i]
            for i in ids
            if i in found
            and found[i].kind == kind
            and matches(found[i], others, self.types)
            and not self._is_excluded(found[i])
        ]
        if self.order():
            sort(entities, self.order(), self.types)
        return entities[self.state.low : self.state.high]

    def _pages(self, chunk: int) -> Iterator[Entity]:
        """Every match of the unsliced store query, a keyset page at a time, exclusions applied.

        A list field gives an entity one index row per element, so a later page may repeat
        an entity of an earlier one: those are dropped (remembering ids only when it can happen).
        """
        seen: set[Any] = set()
        dedupe = self._touches_lists()
        token = None
        while True:
            base = self.query(sliced=False)
            page_query = (base.after(token) if token else base)[:chunk]
            page = list(page_query)
            for entity in page:
                if dedupe and entity.id in seen:
                    continue
                seen.update([entity.id] if dedupe else [])
                if not self._is_excluded(entity):
                    yield entity
            if len(page) < chunk:
                return
            token = page_query.cursor(page[-1])

    def _is_excluded(self, entity: Entity) -> bool:
        return any(matches(entity, group, self.types) for group in self.state.excluded)

    def _touches_lists(self) -> bool:
        names = {lk.field for lk in self.state.where} | {n.lstrip("-") for n in self.order()}
        return any(isinstance(self.model._meta._by_name.get(n), ListField) for n in names)


def _batches(lookups: list[Lookup]) -> Iterator[dict[str, Any]]:
    """Keyword dicts for the store's filter(); a repeated field__lookup starts a new one."""
    batch: dict[str, Any] = {}
    for lookup in lookups:
        if lookup.keyword in batch:
            yield batch
            batch = {}
        batch[lookup.keyword] = lookup.value
    if batch:
        yield batch
