"""Reader: runs a query's plan against the shards and yields the entities that truly match.

Three ways in, one way out. An index plan pages through the index table of every target shard
in key order (joined to ``entities`` when they share the shard, so one statement answers); a
query with no filter lists the kind through the ``(kind, added_id)`` key; ``scan()`` reads the
whole kind. The streams of the shards are merged in order, then every entity is de-duplicated
(a list field gives several index rows) and re-checked against every condition.

An index plan binds only the conditions the index drives; an ``in`` on the fields before an
order is read one value at a time, each read in index order, and merged. The residual
conditions (and the query's checks) are tested on the entities read, at most ``max_examined``
of them: past that, IndexRequired names what was examined and the index that would serve.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from .entity import Entity
from .errors import DecodeError, IndexRequired, InvalidQuery
from .index import normalize
from .lookups import Condition, _loose, passes
from .planner import Plan
from .tables import entities

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from .fastpath import FastPath
    from .query import _Spec
    from .shard import Shard
    from .store import Store

Key = tuple[Any, ...]
Candidate = tuple[Key, Entity | None, bytes]  # an index row: its key, its entity, the entity id
Page = list[Candidate]
Bind = Callable[[str, Any, Any], Any]  # (name, value, column) -> what the statement binds
_MAX_PAGE = 1000
_RESOLVE_BATCH = 100  # index rows whose entities are fetched from their shards at once
_MAX_STATEMENTS = 512  # compiled statements kept; the shapes of an application's queries
_MAX_SPLIT = 64  # reads, one per value of an ``in`` before the order, merged; past it one read


class Reader:
    """Executes one plan."""

    def __init__(
        self, store: Store, kind: str, plan: Plan, spec: _Spec, keys: dict[bytes, Key] | None = None
    ) -> None:
        self.store, self.kind, self.plan, self.spec = store, kind, plan, spec
        # Each condition with the index type its values compare as, looked up once per query.
        types = plan.index.fields if plan.index is not None else {}
        conditions = spec.conditions
        if plan.defaults:
            conditions = tuple(_defaulted(c, plan.defaults) for c in conditions)
        self._tests = tuple([c.test(types.get(c.field)) for c in conditions])
        self._decode = store.codec.decode
        self.keys: dict[bytes, Key] = {} if keys is None else keys
        self._replicated = spec.consistency != "primary"  # pages read through Shard.serve
        # Whether entities are examined with a bound: some conditions are not the index's.
        self._bounded = bool(plan.residual or spec.checks)
        self._driven = spec.conditions
        if plan.residual:
            residual = plan.residual
            self._driven = tuple(c for i, c in enumerate(spec.conditions) if i not in residual)

    def entities(self) -> Iterator[Entity]:
        """Matching entities, distinct, in order, offset and limit applied.

        The key each one sorts under is noted in ``keys`` by its id's bytes, for cursors.
        """
        spec = self.spec
        stop = None if spec.limit is None else spec.offset + spec.limit
        if stop is not None and self.plan.index is not None and not self._bounded:
            page = self._one_page(stop)
            if page is not None:
                return iter(page[spec.offset :])
        matching = self._examining if self._bounded else self._matching
        found = itertools.chain.from_iterable(matching(self._candidates()))
        return itertools.islice(found, spec.offset, stop)

    def count(self) -> int:
        """How many match, from the index alone when it drives every condition; else the
        entities are read and checked, up to the offset and limit (the query slices the count)."""
        if self._bounded:
            spec = self.spec
            stop = None if spec.limit is None else spec.offset + spec.limit
            found = itertools.chain.from_iterable(self._examining(self._candidates()))
            return sum(1 for _ in itertools.islice(found, stop))
        if self.plan.index is None:
            if self.spec.conditions or self.spec.scan:
                return sum(map(len, self._matching(self._candidates())))
            return self._count_listing()
        table = self.store.registry.table(self.plan.index)
        stmt = sa.select(sa.func.count(sa.distinct(table.c.entity_id))).where(*self._where(table))
        return sum(self.store.shards.fan_out(lambda s: self._scalar(s, stmt), self._targets()))

    def key_of(self, entity: Entity) -> Key:
        """The key an entity sorts under in this plan (the first one, for a list field)."""
        if self.plan.index is None and not self.plan.key:
            raise InvalidQuery("a cursor of an unordered listing needs an entity it returned")
        defaults = self.plan.defaults
        values = [self._first_value(f, entity.get(f, defaults.get(f))) for f in self.plan.key]
        return (*values, entity.id.bytes)

    # -- candidates ---------------------------------------------------------------------------

    def _candidates(self) -> Iterator[Page]:
        if self.plan.index is not None:
            return self._from_index()
        if self.spec.scan and self.plan.key:
            return self._sorted_scan()
        return self._listing()

    def _one_page(self, stop: int) -> list[Entity] | None:
        """The first ``stop`` results from one read of the first page of each target shard, if
        those pages hold them.

        The usual query (the latest ten of one user) wants one page of one shard. Read here, it
        skips the paging, merging and de-duplicating machinery, whose cost was a tenth of such
        a query's. A query over several shards reads each one's first page at once (as
        :meth:`_streams` does) and walks their rows merged in key order, checking them as it
        goes. None when a read is not joined to its entities, or there are no kept
        connections, or the pages fall short (a stale or repeated row, or an entity on another
        shard): the general way then reads the query again.
        """
        if stop > _MAX_PAGE:
            return None
        targets = self._targets()
        joined, outer = self._join()
        if not targets or not joined or self.plan.split or self._replicated:
            return None
        shards = self.store.shards
        fasts = [shards[shard].fast for shard in targets]
        if None in fasts:
            return None
        index, after, size = self.plan.index, self.spec.after, self._first_page()
        assert index is not None
        forms, values = self._bound(index.fields)
        shape = (self.plan.shape, True, outer, forms)  # as _index_read's, made if compiled now
        width = len(self.plan.key) + 1
        runs = {
            shard: (self._compiled(fast.dialect, shape, after, size), fast)
            for shard, fast in zip(targets, fasts, strict=True)
            if fast is not None
        }
        if len(targets) == 1:
            compiled, fast = runs[targets[0]]
            rows = compiled.run(fast, values, after)
            found = self._checked_rows(rows, width, stop)
            short = len(rows) < size
        else:
            pages = shards.fan_out(lambda s: runs[s][0].run(runs[s][1], values, after), targets)
            cut: list[bool] = []
            found = self._checked_rows(self._in_order(pages, width, size, cut), width, stop)
            short = not cut
        if found is None or (len(found) < stop and not short):
            return None
        return found

    def _in_order(
        self, pages: list[Sequence[Any]], width: int, size: int, cut: list[bool]
    ) -> Iterator[Any]:
        """The rows of the shards' first pages merged in key order, up to the last row of the
        first full page to run out (what follows it may sort after rows not read yet): then
        ``cut`` is marked."""
        left = [len(rows) for rows in pages]
        tagged = [[(n, row) for row in rows] for n, rows in enumerate(pages)]
        merged = heapq.merge(
            *tagged, key=lambda item: _sortable(item[1][:width]), reverse=self.plan.desc
        )
        for n, row in merged:
            yield row
            left[n] -= 1
            if not left[n] and len(pages[n]) >= size:
                cut.append(True)
                return

    def _checked_rows(
        self, rows: Iterable[Any], width: int, stop: int | None = None
    ) -> list[Entity] | None:
        """The distinct entities of joined rows that truly match (the first ``stop``), each
        one's key noted; None when a row's entity is not on the shard (an outer join's), for
        the general way."""
        decode, kind, tests, keys = self._decode, self.kind, self._tests, self.keys
        found: list[Entity] = []
        seen: set[bytes] = set()
        id_at, version_at, body_at = width - 1, width + 1, width + 2
        entity_id = b""
        try:
            for row in rows:
                body, entity_id = row[body_at], row[id_at]
                if body is None or row[width] != kind or entity_id in seen:
                    if row[width] is None:
                        return None  # its entity lives on another shard
                    continue  # a tombstone, another kind's entity, or an entity met already
                decoded = decode(body)
                for condition, of_type, field, wanted, wanted_type, default in tests:  # passes()
                    value = decoded.get(field, default)
                    plainly_equal = type(value) is wanted_type and value == wanted
                    if not plainly_equal and not condition.matches(decoded, of_type):
                        break
                else:
                    seen.add(entity_id)
                    keys[entity_id] = row[:width]
                    found.append(Entity(entity_id, kind, row[version_at], decoded))
                    if len(found) == stop:
                        break
        except DecodeError as exc:
            raise _naming(entity_id, exc) from exc
        return found

    def _from_index(self) -> Iterator[Page]:
        readers = self._per_value() if self.plan.split else None
        if readers is not None:
            return self._merge([reader._from_index() for reader in readers])
        read = self._index_read(*self._join())
        merged = self._merge(self._streams(self._targets(), read))
        return merged if read.joined and not read.outer else self._resolve(merged)

    def _join(self) -> tuple[bool, bool]:
        """Whether the index read is joined to ``entities``, and whether by an outer join.

        Joined where the index rows live beside their entities: an index without shard_on
        (its rows are on their entity's shard), or a kind whose group has one shard. A kind
        colocated on the index's shard_on field has its entities there too, mostly: an id
        given by the caller, minted before the kind was declared, or whose value changed
        since, lives elsewhere. So the join is outer, and the rows whose entity it did not
        find are fetched from their own shards (:meth:`_resolve`).
        """
        index, shards = self.plan.index, self.store.shards
        assert index is not None
        if index.shard_on is None or len(shards.positions(self.kind)) == 1:
            return True, False
        if shards.kind(self.kind).colocate_on == index.shard_on:
            return True, True
        return False, False

    def _per_value(self) -> list[Reader] | None:
        """One reader per combination of the values of the ``in`` conditions on the fields
        before the key (``plan.split``): each reads in index order, where one read of all the
        values would sort them all first. None past ``_MAX_SPLIT`` reads: one read sorts."""
        split = self.plan.split
        values = [
            [(n, v) for v in dict.fromkeys(c.value)]
            for n, c in enumerate(self._driven)
            if c.field in split and c.lookup == "in"
        ]
        if math.prod(map(len, values)) > _MAX_SPLIT:
            return None
        plan = dataclasses.replace(self.plan, residual=(), split=())
        readers = []
        for chosen in itertools.product(*values):
            conditions = list(self._driven)
            for n, value in chosen:
                conditions[n] = Condition(conditions[n].field, "exact", value)
            spec = self.spec._replace(conditions=tuple(conditions))
            readers.append(Reader(self.store, self.kind, plan, spec))
        return readers

    def _streams(self, targets: Sequence[int], read: _Read) -> list[Iterator[Page]]:
        """Each target shard's pages; the first pages read at once on the store's pool."""
        if len(targets) == 1:
            return [self._pages(targets[0], read)]
        after, size = self.spec.after, self._first_page()
        firsts = self.store.shards.fan_out(lambda s: self._page(s, read, after, size), targets)
        return [self._pages(s, read, rows) for s, rows in zip(targets, firsts, strict=True)]

    def _index_read(self, joined: bool, outer: bool = False) -> _Read:
        """The paged read of the index table, joined to ``entities`` (outer or not) or not."""
        index = self.plan.index
        assert index is not None
        forms, values = self._bound(index.fields)

        def build(bind: Bind) -> tuple[Any, list[Any]]:
            # Short aliases: the statement is sent, and parsed, once per page of every query.
            table = self.store.registry.table(index).alias("i")
            cols = [table.c[f] for f in self.plan.key] + [table.c.entity_id]
            base = sa.select(*cols)
            if joined:
                e = entities.alias("e")
                base = base.add_columns(e.c.kind, e.c.version, e.c.body)
                base = base.join(e, e.c.id == table.c.entity_id, isouter=outer)
            return base.where(*self._where(table, bind)), cols

        shape = (self.plan.shape, joined, outer, forms)
        return _Read(shape, build, values, len(self.plan.key) + 1, joined, outer)

    def _bound(self, fields: dict[str, str]) -> tuple[tuple[Any, ...], list[Any]]:
        """The served conditions' forms in SQL, ``(field, form, value count)``, and their values
        in that order, flat: as ``_where`` binds them, named ``c{n}_{i}``."""
        forms: list[tuple[str, str, int]] = []
        values: list[Any] = []
        for condition in self._driven:
            kind = fields.get(condition.field)
            if kind is not None:
                form, bound = condition.sql(kind)
                forms.append((condition.field, form, len(bound)))
                values.extend(bound)
        return tuple(forms), values

    def _listing(self) -> Iterator[Page]:
        def build(bind: Bind) -> tuple[Any, list[Any]]:
            cols = [entities.c.added_id, entities.c.id]
            base = sa.select(*cols, entities.c.kind, entities.c.version, entities.c.body)
            kind = bind("c0_0", self.kind, entities.c.kind)
            return base.where(entities.c.kind == kind, entities.c.body.is_not(None)), cols

        forms = (("kind", "eq", 1),)
        read = _Read(("listing", True, forms), build, [self.kind], 2, True)
        return self._merge(self._streams(self.store.shards.positions(self.kind), read))

    def _sorted_scan(self) -> Iterator[Page]:
        """A scan ordered by body fields: read the kind, sort in memory."""
        listed = itertools.chain.from_iterable(self._listing())
        keyed: Page = [(self.key_of(e), e, e.id.bytes) for _, e, _ in listed if e is not None]
        if self.spec.after is not None:
            after = _sortable(self.spec.after)
            keyed = [k for k in keyed if (_sortable(k[0]) < after) == self.plan.desc]
        keyed.sort(key=lambda item: _sortable(item[0]), reverse=self.plan.desc)
        return iter([keyed])

    def _pages(self, shard: int, read: _Read, first: Sequence[Any] | None = None) -> Iterator[Page]:
        """One shard's candidates in key order, a page at a time, read in growing keyset pages
        (``first``: the first page's rows, read already).

        Pages, not rows, flow between the steps: a query of ten rows then costs one hop
        through each step instead of ten.
        """
        after, size = self.spec.after, self._first_page()
        width = read.width
        while True:
            rows = self._page(shard, read, after, size) if first is None else first
            first = None
            if read.joined:
                yield self._joined(rows, width)
            else:
                yield [(key := row[:width], None, key[-1]) for row in rows]
            if len(rows) < size:
                return
            after, size = tuple(rows[-1][:width]), min(size * 2, _MAX_PAGE)

    def _joined(self, rows: Sequence[Any], width: int) -> Page:
        """Candidates of rows that carry (key..., entity_id, kind, version, body)."""
        decode, kind = self._decode, self.kind
        page: Page = []
        append = page.append
        key: Key = (b"",)
        try:
            for row in rows:
                key = row[:width]  # a tuple, from the driver's tuples and SQLAlchemy's rows alike
                body = row[width + 2]
                if body is not None and row[width] == kind:  # not a tombstone, nor another kind's
                    append((key, Entity(key[-1], kind, row[width + 1], decode(body)), key[-1]))
                elif row[width] is None:  # an outer join's: the entity lives on another shard
                    append((key, None, key[-1]))
        except DecodeError as exc:
            raise _naming(key[-1], exc) from exc
        return page

    def _page(self, shard: int, read: _Read, after: Key | None, size: int) -> Sequence[Any]:
        on = self.store.shards[shard]
        if self._replicated:
            return on.serve(lambda replica: self._page_on(replica, read, after, size), "replica")
        return self._page_on(on, read, after, size)

    def _page_on(self, on: Shard, read: _Read, after: Key | None, size: int) -> Sequence[Any]:
        """One page of ``read``, on that shard's primary or on one of its replicas."""
        engine, fast = on.engine, on.fast
        if fast is not None:
            compiled = self._compiled(engine.dialect, read.shape, after, size, read)
            return compiled.run(fast, read.values, after)
        with on.read() as conn:
            return conn.execute(self._statement(read, after, size, _as_is)).all()

    def _statement(self, read: _Read, after: Key | None, size: int, bind: Bind) -> Any:
        base, cols = read.build(bind)
        order = [c.desc() if self.plan.desc else c.asc() for c in cols]
        # The page size is part of the statement's shape: written in, it binds nothing.
        stmt = base.order_by(*order).limit(sa.literal_column(str(int(size))))
        if after is not None:
            binds = [
                None if v is None else bind(f"a{j}", v, c)
                for j, (c, v) in enumerate(zip(cols, after, strict=True))
            ]
            stmt = stmt.where(_after(cols, binds, self.plan.desc))
        return stmt

    def _compiled(
        self,
        dialect_: Dialect,
        shape: tuple[Any, ...],
        after: Key | None,
        size: int,
        read: _Read | None = None,
    ) -> _Compiled:
        """The page's statement compiled for the DBAPI cursor, once per shape of page: the
        ``shape`` of ``read``, by default the joined index read, made only to compile it."""
        nulls = None if after is None else tuple(v is None for v in after)
        key = (dialect_, shape, self.plan.desc, size, nulls)
        compiled = _statements.get(key)
        if compiled is None:
            if len(_statements) >= _MAX_STATEMENTS:
                _statements.clear()
            made = read or self._index_read(True, shape[2])  # _one_page's: joined, outer?
            stmt = self._statement(made, after, size, _parameter)
            compiled = _statements[key] = _Compiled.of(stmt, dialect_, shape[-1])
        return compiled

    def _merge(self, streams: list[Iterator[Page]]) -> Iterator[Page]:
        if len(streams) == 1:
            return streams[0]
        rows = [itertools.chain.from_iterable(stream) for stream in streams]
        merged = heapq.merge(*rows, key=lambda item: _sortable(item[0]), reverse=self.plan.desc)
        return _chunks(merged, min(_RESOLVE_BATCH, self._first_page()))

    def _resolve(self, pages: Iterator[Page]) -> Iterator[Page]:
        """Fetch the entities of index rows from their own shards, a batch at a time; rows
        that carry their entity (an outer join found it) keep it."""
        for page in pages:
            for start in range(0, len(page), _RESOLVE_BATCH):
                batch = page[start : start + _RESOLVE_BATCH]
                wanted = [entity_id for _, entity, entity_id in batch if entity is None]
                if not wanted:
                    yield batch
                    continue
                found = self.store.get_many(wanted, consistency=self.spec.consistency)
                yield [
                    (key, entity or found.get(uuid.UUID(bytes=entity_id)), entity_id)
                    for key, entity, entity_id in batch
                ]

    def _matching(self, pages: Iterable[Page]) -> Iterator[list[Entity]]:
        """Each page's entities that truly match, each entity once; their keys go to ``keys``."""
        keys, kind, tests = self.keys, self.kind, self._tests
        seen: set[bytes] = set()
        for page in pages:
            found = []
            for key, entity, entity_id in page:
                if entity is None or entity_id in seen or entity.kind != kind:
                    continue
                if passes(entity._body, tests):
                    seen.add(entity_id)
                    keys[entity_id] = key
                    found.append(entity)
            yield found

    def _examining(self, pages: Iterable[Page]) -> Iterator[list[Entity]]:
        """:meth:`_matching` with residual conditions or checks: each entity examined once,
        and IndexRequired rather than examine more than ``max_examined`` through an index (a
        ``scan()`` reads them all, as asked)."""
        keys, kind, tests = self.keys, self.kind, self._tests
        checks = self.spec.checks
        most = self.spec.max_examined if self.plan.index is not None else math.inf
        seen: set[bytes] = set()
        for page in pages:
            for key, entity, entity_id in page:
                if entity is None or entity_id in seen or entity.kind != kind:
                    continue
                if len(seen) >= most:
                    raise IndexRequired(self._too_many(len(seen)))
                seen.add(entity_id)
                if passes(entity._body, tests) and all([check(entity) for check in checks]):
                    keys[entity_id] = key
                    yield [entity]  # one at a time: a limit met examines no further

    def _too_many(self, examined: int) -> str:
        conditions = self.spec.conditions
        residual = [conditions[i] for i in self.plan.residual]
        checked = [f"{c.field}__{c.lookup}" for c in residual]
        checked += ["a check"] * bool(self.spec.checks)
        wanted = sorted(conditions, key=lambda c: not c.is_equality)
        fields = dict.fromkeys([c.field for c in wanted] + list(self.plan.key))
        index = self.plan.index
        assert index is not None
        return (
            f"a query of {self.kind!r} examined {examined} entities (its max_examined) through "
            f"index {index.name!r}, checking {', '.join(checked)} on each; "
            f"an index on ({', '.join(fields)}) would serve it"
        )

    # -- SQL pieces ---------------------------------------------------------------------------

    def _where(self, table: sa.FromClause, bind: Bind | None = None) -> list[Any]:
        """The conditions on the index's fields as SQL; with ``bind``, the n-th condition's
        values become parameters ``c{n}_0, c{n}_1...``, as ``_from_index`` names its values."""
        assert self.plan.index is not None
        fields = self.plan.index.fields
        served = [c for c in self._driven if c.field in fields]
        return [
            c.clause(
                table.c[c.field],
                fields[c.field],
                None if bind is None else _named(bind, f"c{n}_", table.c[c.field]),
            )
            for n, c in enumerate(served)
        ]

    def _targets(self) -> Sequence[int]:
        """The shards holding the index rows: one per pinned shard_on value, else all those of
        the kind's shard group."""
        index, shards = self.plan.index, self.store.shards
        members = shards.positions(self.kind)
        if index is None or index.shard_on is None or len(members) == 1:
            return members
        for c in self.spec.conditions:
            if c.field == index.shard_on and c.is_equality:
                values = c.normalized(index.fields[c.field])
                values = values if c.lookup == "in" else [values]
                return sorted({shards.shard_for_value(v, self.kind) for v in values})
        return members

    def _first_page(self) -> int:
        # Exactly what is asked for: a stale or repeated row costs one more page, read only then.
        if self.spec.limit is None:
            return 200
        return max(10, min(self.spec.offset + self.spec.limit, _MAX_PAGE))

    def _scalar(self, shard: int, stmt: Any) -> int:
        def count(on: Shard) -> int:
            with on.read() as conn:
                return int(conn.execute(stmt).scalar_one())

        return self.store.shards[shard].serve(count, self.spec.consistency)

    def _count_listing(self) -> int:
        stmt = sa.select(sa.func.count()).where(
            entities.c.kind == self.kind, entities.c.body.is_not(None)
        )
        shards = self.store.shards
        return sum(shards.fan_out(lambda s: self._scalar(s, stmt), shards.positions(self.kind)))

    def _first_value(self, field: str, value: Any) -> Any:
        kind = self.plan.kind_of(field)
        values = value if isinstance(value, list) else [value]
        conds = [c for c in self.spec.conditions if c.field == field]
        usable = [v for v in values if all(c.matches({field: v}, kind) for c in conds)] or [None]
        normalized = [normalize(kind, v) if kind else _loose(v) for v in usable]
        return (max if self.plan.desc else min)(normalized, key=lambda v: _sortable((v,)))


class _Read(NamedTuple):
    """A paged read: its shape, the statement it builds, the values it binds, its key width.

    ``build(bind)`` returns the statement without order and limit, and its key columns; every
    value in it is bound through ``bind``, so that one compilation serves all reads of a shape.
    The shape ends with the forms of its conditions, ``(field, form, value count)``, whose
    values ``values`` holds in order, flat, as the statement names them: ``c{n}_{i}``.
    """

    shape: tuple[Any, ...]
    build: Callable[[Bind], tuple[Any, list[Any]]]
    values: list[Any]
    width: int
    joined: bool
    outer: bool = False  # joined by an outer join: rows whose entity is elsewhere carry None


@dataclasses.dataclass(frozen=True)
class _Compiled:
    """A page's SQL for the DBAPI cursor, with where each named value goes and how it converts.

    Through SQLAlchemy's Connection a page cost more than the raw join it runs: building the
    statement, its cache key, and the checkout's ping and rollback. This is the one place a
    query runs on the DBAPI cursor instead, on the store's kept connections (``FastPath``); the
    values still go through the column types' bind and result processors, as the Core path's do.
    """

    sql: str
    # Where each parameter comes from in ``values + after``; None when in that order already.
    sources: tuple[int, ...] | None
    binders: tuple[tuple[int, Callable[[Any], Any]], ...]  # (parameter, its bind processor)
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, its result processor)

    @classmethod
    def of(cls, stmt: Any, dialect_: Dialect, forms: tuple[Any, ...]) -> _Compiled:
        compiled = stmt.compile(dialect=dialect_)
        names = tuple(compiled.positiontup or ())
        sources = tuple(_source(name, forms) for name in names)
        types = [compiled.binds[name].type.dialect_impl(dialect_) for name in names]
        binders = tuple(
            (i, process)
            for i, type_ in enumerate(types)
            if (process := type_.bind_processor(dialect_))
        )
        results = tuple(
            (i, process)
            for i, column in enumerate(stmt.selected_columns)
            if (process := column.type.dialect_impl(dialect_).result_processor(dialect_, None))
        )
        in_order = sources == tuple(range(len(sources)))
        return cls(str(compiled), None if in_order else sources, binders, results)

    def run(self, fast: FastPath, values: list[Any], after: Key | None) -> Sequence[Any]:
        params = values if after is None else values + [v for v in after if v is not None]
        if self.sources is not None:
            given = values if after is None else values + list(after)
            params = [given[i] for i in self.sources]
        if self.binders:
            params = list(params)
            for i, process in self.binders:
                params[i] = process(params[i])
        rows = fast.select(self.sql, params)
        if not self.results:
            return rows
        return [self._converted(row) for row in rows]

    def _converted(self, row: Any) -> tuple[Any, ...]:
        converted = list(row)
        for i, process in self.results:
            converted[i] = process(converted[i])
        return tuple(converted)


def _source(name: str, forms: tuple[Any, ...]) -> int:
    """Where the parameter ``name`` (``c{n}_{i}``, or ``a{j}`` of the after key) is found in
    the conditions' values followed by the after key's."""
    if name.startswith("a"):
        return sum(count for _, _, count in forms) + int(name[1:])
    n, i = map(int, name[1:].split("_"))
    return sum(count for _, _, count in forms[:n]) + i


_statements: dict[tuple[Any, ...], _Compiled] = {}


def _as_is(_name: str, value: Any, _column: Any) -> Any:
    """Bind a value as SQLAlchemy binds any literal: the Core path, with its own cache."""
    return value


def _parameter(name: str, value: Any, column: Any) -> Any:
    """Bind a value as a named parameter of the column's type, to compile once per shape."""
    return sa.bindparam(name, value, type_=column.type)


def _named(bind: Bind, prefix: str, column: Any) -> Callable[[int, Any], Any]:
    """A condition's binder: its i-th value gets the name ``prefix + i``."""
    return lambda i, value: bind(f"{prefix}{i}", value, column)


def _defaulted(condition: Condition, defaults: dict[str, Any]) -> Condition:
    """The condition checking a body that lacks its field as holding the field's default."""
    if condition.field in defaults:
        return condition.with_default(defaults[condition.field])
    return condition


def _naming(entity_id: bytes, exc: DecodeError) -> DecodeError:
    """A body that cannot be decoded, named by its entity's id (no per-row cost: raised once)."""
    return DecodeError(f"entity {uuid.UUID(bytes=bytes(entity_id))}: {exc}")


def _chunks(items: Iterator[Candidate], size: int) -> Iterator[Page]:
    while page := list(itertools.islice(items, size)):
        yield page


def _sortable(key: Key) -> tuple[Any, ...]:
    """NULL sorts first, as MySQL and SQLite sort it ascending."""
    return tuple((0,) if v is None else (1, v) for v in key)


def _after(cols: list[Any], key: Sequence[Any], desc: bool) -> Any:
    """Rows strictly after ``key`` in (cols...) order, NULLs first ascending, last descending.

    ``key`` holds the values as bound (None for NULL), so that one statement serves many keys.
    """
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
