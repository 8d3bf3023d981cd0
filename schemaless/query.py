"""Query: a lazy, chainable query over the entities of one kind, answered through an index.

Building a query picks its index (see :mod:`schemaless.planner`); running it reads entity ids
from that index's table (one shard when ``shard_on`` is pinned by equality, else every shard,
merged in order with the limit pushed down), fetches the entities, and re-checks every condition
against each body, so a stale index row costs a read but never gives a wrong answer. The
conditions the index does not drive are residual: checked on the entities it yields, at most
``max_examined`` of them, past which IndexRequired is raised.

    >>> q = store.query("entry").filter(user_id=7).order_by("-published")
    >>> page = q[:10]                      # a Query; runs when iterated
    >>> more = q.after(page[9])[:10]       # keyset pagination
    >>> store.query("entry").scan().filter(title="hi")   # the explicit full scan
    >>> store.query("entry").filter(user_id=7, title="hi").max_examined(1000)   # title: residual
"""

from __future__ import annotations

import base64
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .entity import Entity
from .errors import IndexRequired, InvalidQuery
from .lookups import Condition
from .planner import Plan, choose, parse_order, require_servable
from .reader import Reader

if TYPE_CHECKING:
    from .registry import Entry
    from .store import Store

_ENTRIES_TTL = 1.0  # seconds a store trusts its cached registry when planning
MAX_EXAMINED = 10_000  # entities a query with residual conditions reads, by default

Check = Callable[[Entity], bool]


class _Spec(NamedTuple):
    conditions: tuple[Condition, ...] = ()
    order: tuple[str, ...] = ()
    scan: bool = False
    partial: bool = False
    offset: int = 0
    limit: int | None = None
    after: tuple[Any, ...] | None = None
    max_examined: int = MAX_EXAMINED
    checks: tuple[Check, ...] = ()
    consistency: str = "primary"  # or "replica": see replica.py


_EMPTY = _Spec()
# _Spec(...) without NamedTuple's Python-level __new__: every step of building a query makes one.
_spec = functools.partial(tuple.__new__, _Spec)


class Query:
    """Entities of one kind matching every condition, in index order."""

    __slots__ = ("store", "kind", "_spec", "_result", "_keys", "_planned")

    def __init__(
        self,
        store: Store,
        kind: str,
        spec: _Spec | None = None,
        keys: dict[Any, Any] | None = None,
        *,
        consistency: str = "primary",
    ) -> None:
        self.store = store
        self.kind = kind
        if spec is None:
            spec = _EMPTY if consistency == "primary" else _EMPTY._replace(consistency=consistency)
        self._spec = spec
        self._result: list[Entity] | None = None
        # Keys of the entities returned by id, shared by the queries that page this one
        # differently (same plan, same keys), so page.after(page[-1]) resumes.
        self._keys: dict[bytes, tuple[Any, ...]] = {} if keys is None else keys
        # The plan made while building, with the registry snapshot it was made from.
        self._planned: tuple[Sequence[Entry], Plan] | None = None

    # -- building (each returns a new Query) ----------------------------------------------------

    def filter(self, **lookups: Any) -> Query:
        """Add conditions: ``field=value`` or ``field__lookup=value``; all must hold."""
        added = tuple(itertools.starmap(Condition.parse, lookups.items()))
        s = self._spec
        spec = _spec((s.conditions + added, *s[1:]))
        return Query(self.store, self.kind, spec)._checked(added)

    def order_by(self, *fields: str) -> Query:
        """Order by index fields, ``-field`` for descending; replaces any earlier order."""
        parse_order(fields)
        s = self._spec
        spec = _spec((s.conditions, fields, *s[2:]))
        return Query(self.store, self.kind, spec)._checked(())

    def scan(self) -> Query:
        """Answer by reading every entity of the kind: the explicit escape hatch."""
        return Query(self.store, self.kind, self._spec._replace(scan=True))

    def allow_partial(self) -> Query:
        """Accept a building index, whose answers miss entities not yet backfilled."""
        return Query(self.store, self.kind, self._spec._replace(partial=True))

    def check(self, test: Check) -> Query:
        """Keep the entities for which ``test(entity)`` is true: a residual test in Python.

        Like a condition no index drives, it is checked on the entities an index yields (at
        most ``max_examined`` of them), so the query still needs a condition an index drives.
        """
        s = self._spec
        return Query(self.store, self.kind, s._replace(checks=(*s.checks, test)))

    def max_examined(self, count: int) -> Query:
        """Read at most ``count`` entities to check residual conditions (default 10,000), then
        raise IndexRequired rather than read on: an index on those fields would serve."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidQuery("max_examined takes a non-negative int")
        return self._derived(self._spec._replace(max_examined=count))

    def limit(self, count: int) -> Query:
        return self[:count]

    def after(self, cursor: Entity | str) -> Query:
        """The results that come after ``cursor`` (an entity of an earlier page, or a token)."""
        if isinstance(cursor, Entity):
            cursor = self.cursor(cursor)
        after = self._decode_cursor(cursor)
        return self._derived(self._spec._replace(after=after, offset=0))

    # -- running ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Entity]:
        if self._result is None:
            self._result = self._run()
        return iter(self._result)

    def __len__(self) -> int:
        if self._result is None:
            self._result = self._run()
        return len(self._result)

    def __bool__(self) -> bool:
        return self.exists()

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            return self._sliced(item)
        if not isinstance(item, int) or item < 0:
            raise InvalidQuery("queries take non-negative int indexes and slices")
        found = list(self._sliced(slice(item, item + 1)))
        if not found:
            raise IndexError("query index out of range")
        return found[0]

    def first(self) -> Entity | None:
        return next(iter(self[:1]), None)

    def exists(self) -> bool:
        return self.first() is not None

    def count(self) -> int:
        """How many entities match, read from the index alone (exact once it has caught up)."""
        if self._result is not None:
            return len(self._result)
        plan = self.plan()
        if self._matches_nothing():
            return 0
        total = Reader(self.store, self.kind, plan, self._spec).count()
        total = max(0, total - self._spec.offset)
        return total if self._spec.limit is None else min(total, self._spec.limit)

    def plan(self) -> Plan:
        """The plan this query runs with; raises IndexRequired or IndexNotReady."""
        spec = self._spec
        if spec.scan:
            return Plan(None, *parse_order(spec.order))
        entries = self._entries()
        if self._planned is not None and self._planned[0] is entries:
            return self._planned[1]
        plan = choose(self.kind, spec.conditions, spec.order, entries, allow_partial=spec.partial)
        if spec.checks and plan.index is None:
            raise IndexRequired(
                f"no index of {self.kind!r} drives a condition of this query, whose other "
                "tests are checked on the entities an index yields; add one, or use scan()"
            )
        self._planned = (entries, plan)
        return plan

    def cursor(self, entity: Entity) -> str:
        """A token for ``after()`` that resumes right behind ``entity``."""
        key = self._keys.get(entity.id.bytes) or Reader(
            self.store, self.kind, self.plan(), self._spec
        ).key_of(entity)
        return base64.urlsafe_b64encode(self.store.codec.encode({"k": list(key)})).decode()

    # -- internals ------------------------------------------------------------------------------

    def _run(self) -> list[Entity]:
        plan = self.plan()
        if self._matches_nothing():
            return []
        return list(Reader(self.store, self.kind, plan, self._spec, self._keys).entities())

    def _matches_nothing(self) -> bool:
        """Whether a condition (an empty ``in``) rules out every entity: the answer is then
        known without asking any shard, the same on every backend."""
        return any([c.matches_nothing for c in self._spec.conditions])

    def _sliced(self, item: slice) -> Query:
        if item.step not in (None, 1):
            raise InvalidQuery("queries do not take a slice step")
        start, stop = item.start or 0, item.stop
        if start < 0 or (stop is not None and stop < 0):
            raise InvalidQuery("negative indexing is not supported")
        s = self._spec
        limit = None if stop is None else max(0, stop - start)
        if s.limit is not None:
            room = max(0, s.limit - start)
            limit = room if limit is None else min(limit, room)
        spec = _spec((*s[:4], s.offset + start, limit, *s[6:]))
        return self._derived(spec)

    def _checked(self, added: tuple[Condition, ...]) -> Query:
        """Raise IndexRequired now when no index could ever serve what is asked so far, and
        InvalidQuery when an ``added`` value fits no index field of its name."""
        spec = self._spec
        if not spec.scan:
            require_servable(self.kind, spec.conditions, spec.order, self._entries(), added)
        return self

    def _entries(self) -> Sequence[Entry]:
        return self.store.registry.snapshot(max_age=_ENTRIES_TTL)

    def _derived(self, spec: _Spec) -> Query:
        """A query that only pages differently: it keeps this one's plan."""
        derived = Query(self.store, self.kind, spec, self._keys)
        derived._planned = self._planned
        return derived

    def _decode_cursor(self, token: str) -> tuple[Any, ...]:
        try:
            return tuple(self.store.codec.decode(base64.urlsafe_b64decode(token))["k"])
        except Exception as exc:
            raise InvalidQuery("not a cursor of this query") from exc

    def __repr__(self) -> str:
        conditions = ", ".join(f"{c.field}__{c.lookup}={c.value!r}" for c in self._spec.conditions)
        return f"<Query {self.kind} filter({conditions}) order_by{self._spec.order}>"
