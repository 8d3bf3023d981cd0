"""Reader: runs a query's plan against the shards and yields the entities that truly match.

Three ways in, one way out. An index plan pages through the index table of every target shard
in key order (joined to ``entities`` when they share the shard, so one statement answers); a
query with no filter lists the kind through the ``(kind, added_id)`` key; ``scan()`` reads the
whole kind. The streams of the shards are merged in order, then every entity is de-duplicated
(a list field gives several index rows) and re-checked against every condition.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import dialect
from .entity import Entity
from .errors import InvalidQuery
from .index import normalize
from .lookups import _loose
from .planner import Plan
from .tables import entities

if TYPE_CHECKING:
    from .query import _Spec
    from .store import Store

Key = tuple[Any, ...]
_MAX_PAGE = 1000


class Reader:
    """Executes one plan."""

    def __init__(self, store: Store, kind: str, plan: Plan, spec: _Spec) -> None:
        self.store, self.kind, self.plan, self.spec = store, kind, plan, spec

    def entities(self) -> Iterator[tuple[Entity, Key]]:
        """Matching entities with their keys, distinct, in order, offset and limit applied."""
        found = self._matching(self._candidates())
        stop = None if self.spec.limit is None else self.spec.offset + self.spec.limit
        return itertools.islice(found, self.spec.offset, stop)

    def count(self) -> int:
        if self.plan.index is None:
            if self.spec.conditions or self.spec.scan:
                return sum(1 for _ in self._matching(self._candidates()))
            return self._count_listing()
        table = self.store.registry.table(self.plan.index)
        stmt = sa.select(sa.func.count(sa.distinct(table.c.entity_id))).where(*self._where(table))
        return sum(self._scalar(shard, stmt) for shard in self._targets())

    def key_of(self, entity: Entity) -> Key:
        """The key an entity sorts under in this plan (the first one, for a list field)."""
        if self.plan.index is None and not self.plan.key:
            raise InvalidQuery("a cursor of an unordered listing needs an entity it returned")
        values = [self._first_value(field, entity.get(field)) for field in self.plan.key]
        return (*values, entity.id.bytes)

    # -- candidates ---------------------------------------------------------------------------

    def _candidates(self) -> Iterator[tuple[Key, Entity | None, bytes]]:
        if self.plan.index is not None:
            return self._from_index()
        if self.spec.scan and self.plan.key:
            return self._sorted_scan()
        return self._listing()

    def _from_index(self) -> Iterator[tuple[Key, Entity | None, bytes]]:
        assert self.plan.index is not None
        table = self.store.registry.table(self.plan.index)
        joined = self.plan.index.shard_on is None or len(self.store.shards) == 1
        cols = [table.c[f] for f in self.plan.key] + [table.c.entity_id]
        base = sa.select(*cols)
        if joined:
            base = base.add_columns(entities.c.kind, entities.c.version, entities.c.body)
            base = base.join(entities, entities.c.id == table.c.entity_id)
        base = base.where(*self._where(table))
        streams = [self._pages(shard, base, cols, joined) for shard in self._targets()]
        merged = self._merge(streams)
        return merged if joined else self._resolve(merged)

    def _listing(self) -> Iterator[tuple[Key, Entity | None, bytes]]:
        cols = [entities.c.added_id, entities.c.id]
        base = sa.select(*cols, entities.c.kind, entities.c.version, entities.c.body).where(
            entities.c.kind == self.kind, entities.c.body.is_not(None)
        )
        streams = [self._pages(s, base, cols, True) for s in range(len(self.store.shards))]
        return self._merge(streams)

    def _sorted_scan(self) -> Iterator[tuple[Key, Entity | None, bytes]]:
        """A scan ordered by body fields: read the kind, sort in memory."""
        keyed = [(self.key_of(e), e, e.id.bytes) for _, e, _ in self._listing() if e is not None]
        if self.spec.after is not None:
            after = _sortable(self.spec.after)
            keyed = [k for k in keyed if (_sortable(k[0]) < after) == self.plan.desc]
        keyed.sort(key=lambda item: _sortable(item[0]), reverse=self.plan.desc)
        return iter(keyed)

    def _pages(
        self, shard: int, base: Any, cols: list[Any], joined: bool
    ) -> Iterator[tuple[Key, Entity | None, bytes]]:
        """One shard's rows in key order, read in growing keyset pages."""
        order = [c.desc() if self.plan.desc else c.asc() for c in cols]
        after, size = self.spec.after, self._first_page()
        while True:
            stmt = base.order_by(*order).limit(size)
            if after is not None:
                stmt = stmt.where(_after(cols, after, self.plan.desc))
            with dialect.read(self.store.shards.engines[shard]) as conn:
                rows = conn.execute(stmt).all()
            for row in rows:
                key = tuple(row[: len(cols)])
                yield key, self._entity(row, len(cols)) if joined else None, bytes(key[-1])
            if len(rows) < size:
                return
            after, size = tuple(rows[-1][: len(cols)]), min(size * 2, _MAX_PAGE)

    def _merge(self, streams: list[Iterator[Any]]) -> Iterator[Any]:
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=lambda item: _sortable(item[0]), reverse=self.plan.desc)

    def _resolve(self, rows: Iterator[Any]) -> Iterator[tuple[Key, Entity | None, bytes]]:
        """Fetch the entities of index rows from their own shards, a batch at a time."""
        while batch := list(itertools.islice(rows, 100)):
            found = self.store.get_many(uuid.UUID(bytes=r[2]) for r in batch)
            for key, _, entity_id in batch:
                yield key, found.get(uuid.UUID(bytes=entity_id)), entity_id

    def _matching(self, rows: Iterable[tuple[Key, Entity | None, bytes]]) -> Iterator[Any]:
        seen: set[bytes] = set()
        for key, entity, entity_id in rows:
            if entity is None or entity_id in seen or entity.kind != self.kind:
                continue
            if all(
                c.matches(entity._body, self.plan.kind_of(c.field)) for c in self.spec.conditions
            ):
                seen.add(entity_id)
                yield entity, key

    # -- SQL pieces ---------------------------------------------------------------------------

    def _where(self, table: sa.Table) -> list[Any]:
        assert self.plan.index is not None
        fields = self.plan.index.fields
        return [
            c.clause(table.c[c.field], fields[c.field])
            for c in self.spec.conditions
            if c.field in fields
        ]

    def _targets(self) -> Sequence[int]:
        """The shards holding the index rows: one per pinned shard_on value, else all."""
        index, shards = self.plan.index, self.store.shards
        if index is None or index.shard_on is None or len(shards) == 1:
            return range(len(shards))
        for c in self.spec.conditions:
            if c.field == index.shard_on and c.is_equality:
                values = c.normalized(index.fields[c.field])
                values = values if c.lookup == "in" else [values]
                return sorted({shards.shard_for_value(v) for v in values})
        return range(len(shards))

    def _first_page(self) -> int:
        if self.spec.limit is None:
            return 200
        return max(10, min(self.spec.offset + self.spec.limit + 5, _MAX_PAGE))

    def _entity(self, row: Any, at: int) -> Entity | None:
        kind, version, body = row[at], row[at + 1], row[at + 2]
        if body is None:
            return None
        return Entity(
            uuid.UUID(bytes=bytes(row[at - 1])), kind, version, self.store.codec.decode(body)
        )

    def _scalar(self, shard: int, stmt: Any) -> int:
        with dialect.read(self.store.shards.engines[shard]) as conn:
            return int(conn.execute(stmt).scalar_one())

    def _count_listing(self) -> int:
        stmt = sa.select(sa.func.count()).where(
            entities.c.kind == self.kind, entities.c.body.is_not(None)
        )
        return sum(self._scalar(s, stmt) for s in range(len(self.store.shards)))

    def _first_value(self, field: str, value: Any) -> Any:
        kind = self.plan.kind_of(field)
        values = value if isinstance(value, list) else [value]
        conds = [c for c in self.spec.conditions if c.field == field]
        usable = [v for v in values if all(c.matches({field: v}, kind) for c in conds)] or [None]
        normalized = [normalize(kind, v) if kind else _loose(v) for v in usable]
        return (max if self.plan.desc else min)(normalized, key=lambda v: _sortable((v,)))


def _sortable(key: Key) -> tuple[Any, ...]:
    """NULL sorts first, as MySQL and SQLite sort it ascending."""
    return tuple((0,) if v is None else (1, v) for v in key)


def _after(cols: list[Any], key: Key, desc: bool) -> Any:
    """Rows strictly after ``key`` in (cols...) order, NULLs first ascending, last descending."""
    terms = []
    for i, col in enumerate(cols):
        equal = [_eq(c, v) for c, v in zip(cols[:i], key[:i], strict=True)]
        terms.append(sa.and_(*equal, _beyond(col, key[i], desc)))
    return sa.or_(*terms)


def _eq(col: Any, value: Any) -> Any:
    return col.is_(None) if value is None else col == value


def _beyond(col: Any, value: Any, desc: bool) -> Any:
    if not desc:
        return col.is_not(None) if value is None else col > value
    return sa.false() if value is None else sa.or_(col < value, col.is_(None))
