"""Related: ``select_related()`` answered without a join, one read by id per relation.

Django asks a select_related query for the related models' columns beside the model's own
(Cols of the joined tables' aliases in ``compiler.select``, described by ``klass_info``'s
``related_klass_infos``) and builds the related objects from those columns of each row. The
store has no join, but it reads entities by id in one statement per shard: so the page of
entities is read first, then the entities its foreign keys name, one ``get_many`` per relation,
and each row is made of the entity and its related ones. A list of 100 comments with their
entries is then two reads, where ignoring ``select_related`` would make it 101.

Forward foreign keys and one-to-ones to the pk of schemaless models on the same alias are served
so, at any depth. A reverse one-to-one, a ``to_field=`` key, or a model on another database is
not: the query runs
without ``select_related`` and Django reads each related object when it is touched, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from django.db.models.sql.constants import INNER

import schemaless
from schemaless import ids
from schemaless.errors import InvalidId

from .base import read_here

Getter = Callable[[schemaless.Entity], Any]


class Relation(NamedTuple):
    """A joined alias: the entity its ``parent`` alias's ``column`` names, of ``kind``."""

    alias: str
    parent: str
    column: str  # the foreign key's attname, a key of the parent's body
    kind: str
    inner: bool  # Django joins it INNER (a non-null key): a row without it is left out


class Joined:
    """The relations of a select_related query, parents first, and the rows made with them."""

    def __init__(self, base: str, relations: list[Relation]) -> None:
        self.relations = relations
        self.slots: dict[str | None, int] = {r.alias: n for n, r in enumerate(relations, 1)}
        self.slots[base] = 0

    @classmethod
    def of(cls, compiler: Any) -> Joined | None:
        """The compiler's relations once ``pre_sql_setup`` ran; None when one cannot be read
        by id on the compiler's connection (then select_related is dropped)."""
        if compiler.klass_info is None:  # a count: no model rows
            return None
        base = compiler.query.base_table
        relations: list[Relation] = []
        infos = [(base, info) for info in compiler.klass_info.get("related_klass_infos", ())]
        while infos:
            parent, info = infos.pop(0)
            model, field = info["model"], info["field"]
            if info["reverse"] or not read_here(model, compiler.using) or not info["select_fields"]:
                return None
            if not field.target_field.primary_key:  # a to_field= key: not an id to read by
                return None
            alias = compiler.select[info["select_fields"][0]][0].alias
            inner = compiler.query.alias_map[alias].join_type == INNER
            kind = str(model._meta.db_table)
            relations.append(Relation(alias, parent, field.attname, kind, inner))
            infos += [(alias, nested) for nested in info.get("related_klass_infos", ())]
        return cls(base, relations)

    @property
    def aliases(self) -> set[str]:
        return {r.alias for r in self.relations}

    def rows(
        self,
        store: schemaless.Store,
        entities: Sequence[schemaless.Entity],
        select: Sequence[Any],
        getters: Sequence[Getter],
    ) -> list[tuple[Any, ...]]:
        """A row per entity: each selected column's getter applied to the entity of its
        table's alias (the model's own, or a related one), None where there is none."""
        slots = [self.slots.get(getattr(expr, "alias", None), 0) for expr, _, _ in select]
        slotted = list(zip(slots, getters, strict=True))
        chains: list[list[schemaless.Entity | None]] = [[e] for e in entities]
        for relation in self.relations:
            parent = self.slots[relation.parent]
            wanted = {
                key for chain in chains if (key := _key(chain[parent], relation.column)) is not None
            }
            found = _read(store, wanted, relation.kind)
            for chain in chains:
                key = _key(chain[parent], relation.column)
                chain.append(None if key is None else found.get(key))
            if relation.inner:  # a key naming no live entity: the join has no row for it
                chains = [chain for chain in chains if chain[-1] is not None]
        return [
            tuple(get(e) if (e := chain[n]) is not None else None for n, get in slotted)
            for chain in chains
        ]


def _key(entity: schemaless.Entity | None, column: str) -> Any:
    return None if entity is None else entity._body.get(column)


def _read(store: schemaless.Store, keys: set[Any], kind: str) -> dict[Any, schemaless.Entity]:
    """The live entities of ``kind`` that ``keys`` (foreign key values as stored) name."""
    if not keys:
        return {}
    by_id = {}
    for key in keys:
        try:
            by_id[ids.to_uuid(key)] = key
        except InvalidId:  # no entity has it: the row's related object is None
            continue
    found = store.get_many(by_id)
    return {by_id[i]: e for i, e in found.items() if e.kind == kind}
