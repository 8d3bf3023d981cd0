"""Planner: pick the index that serves a query, or say why none does.

An index drives the equality conditions (``exact`` or ``in``) on its leading fields and the
range conditions on the field after them; the order, if any, must be the index's (on the first
field not pinned by ``exact``, or the one after the ``in`` fields, continuing in index order). An
index that drives at least one condition serves the query: the other conditions are residual,
checked on the entities it yields (at most ``max_examined`` of them, see the reader). A partial
index serves only queries whose own conditions include its ``where`` equalities. Among the
indexes that serve, a ready index beats a building one (which serves only with
``allow_partial()``), then the one driving the most conditions, then the one using the most
leading equalities. A query none of whose conditions any index drives raises IndexRequired.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from .errors import IndexNotReady, IndexRequired, InvalidQuery
from .index import Index, WrongType
from .lookups import Condition, _same
from .registry import Entry

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to run a query: through ``index`` (ordered by ``key`` then entity id) or not."""

    index: Index | None
    key: tuple[str, ...] = ()
    desc: bool = False
    # Positions of the conditions the index does not drive: checked on the entities only.
    residual: tuple[int, ...] = ()
    # The ``in`` fields before the key: read one value at a time, merged in key order.
    split: tuple[str, ...] = ()
    # The defaults of the fields filtered on or ordered by, as the kind's indexes give them:
    # a body lacking such a field is checked as holding its default, as it is indexed.
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @functools.cached_property
    def shape(self) -> tuple[Any, ...]:
        """What, besides values, decides this plan's SQL; made once, as plans are reused."""
        fields = tuple(self.index.fields.items()) if self.index else ()
        return (self.index and self.index.name, fields, self.key, self.desc)

    def kind_of(self, field: str) -> str | None:
        """The index type of a field, which decides how its values compare (None: loosely)."""
        return self.index.fields.get(field) if self.index else None


@functools.lru_cache(maxsize=256)
def parse_order(fields: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """``("-published",)`` -> ``(("published",), True)``; one direction for all fields.

    Cached: every query built with an order asks, in a handful of spellings.
    """
    names = tuple(f.lstrip("-") for f in fields)
    directions = {f.startswith("-") for f in fields}
    if len(directions) > 1:
        raise InvalidQuery("order_by fields must all go the same direction")
    return names, directions == {True}


def choose(
    kind: str,
    conditions: Sequence[Condition],
    order: Sequence[str],
    entries: Sequence[Entry],
    *,
    allow_partial: bool = False,
) -> Plan:
    """The best plan over the registered indexes, or IndexRequired / IndexNotReady."""
    names, desc = parse_order(order)
    if not conditions and not names:
        return Plan(None)
    key = (kind, tuple(map(_shape_of, conditions)), names, desc)
    shape = _memo.get(entries, key, _rank, kind, conditions, names, desc, entries)
    for candidate in shape.best:
        if (candidate.is_ready or allow_partial) and _where_holds(candidate.index, conditions):
            _check_values(candidate.index, conditions)
            return candidate.plan
    for candidate in shape.ranked:
        if _where_holds(candidate.index, conditions):
            raise IndexNotReady(
                f"index {candidate.index.name!r} serves this query but is still building; "
                "wait for its backfill, or use allow_partial()"
            )
    raise IndexRequired(_no_index_message(kind, conditions, order, entries))


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """An index that serves a shape of query, as far as its values do not matter."""

    is_ready: bool
    driven: int  # conditions the index drives: more is better
    leftover: int  # fields of the index before the key (pinned by exact): more is better
    index: Index
    plan: Plan


class _Shape(NamedTuple):
    ranked: list[_Candidate]  # in the registry's order
    best: list[_Candidate]  # best first: ready, fewest fields left over, fewest fields


class _Memo:
    """What planning learns from a query's shape alone, kept for one registry snapshot.

    Every query built is checked and planned, and the shape (the kind, the fields and lookups
    filtered on, the order) repeats where the values do not: which indexes could serve it, and
    in which order of preference. Only a partial index's ``where`` and the values' types depend
    on values, and are checked on every call. A new snapshot starts afresh.
    """

    def __init__(self) -> None:
        self._state: tuple[object, dict[Any, Any]] = (None, {})

    def get(self, entries: Sequence[Entry], key: Any, make: Callable[..., T], *args: Any) -> T:
        """``make(*args)``, computed once per ``key`` for this registry snapshot."""
        state = self._state  # read once: another thread may swap in another snapshot's
        if state[0] is not entries:
            state = self._state = (entries, {})
        try:
            return state[1][key]
        except KeyError:
            made = state[1][key] = make(*args)
            return made


def _rank(
    kind: str,
    conditions: Sequence[Condition],
    names: tuple[str, ...],
    desc: bool,
    entries: Sequence[Entry],
) -> _Shape:
    ranked = []
    defaults = _defaults(kind, {c.field for c in conditions} | set(names), entries)
    for entry in entries:
        if entry.is_live and entry.index.kind == kind:
            served = _serves(entry.index, conditions, names)
            if served is not None:
                key, residual, split = served
                leftover = len(entry.index.fields) - len(key)
                own = {**defaults, **entry.index.defaults} if defaults else defaults
                plan = Plan(entry.index, key, desc, residual, split, own)
                driven = len(conditions) - len(residual)
                ranked.append(_Candidate(entry.is_ready, driven, leftover, entry.index, plan))
    # A stable sort: among equals the registry's order decides, as max() over it would.
    best = sorted(
        ranked,
        key=lambda c: (c.is_ready, c.driven, c.leftover, -len(c.index.fields)),
        reverse=True,
    )
    return _Shape(ranked, best)


_memo = _Memo()


def _defaults(kind: str, fields: set[str], entries: Sequence[Entry]) -> dict[str, Any]:
    """The defaults the live indexes of ``kind`` give ``fields`` (the first index's first)."""
    found: dict[str, Any] = {}
    for entry in reversed(entries):
        if entry.is_live and entry.index.kind == kind:
            found.update((f, v) for f, v in entry.index.defaults.items() if f in fields)
    return found


def require_servable(
    kind: str,
    conditions: Sequence[Condition],
    order: tuple[str, ...],
    entries: Sequence[Entry],
    added: Sequence[Condition],
) -> None:
    """Raise IndexRequired unless some index holds a field filtered on (and every field
    ordered by), and InvalidQuery for an ``added`` value that no index field of its name can hold.

    What a query builder checks at each step: more filters may still make an index serve, so
    only the fields count; which index serves, and whether the values fit that one, is settled
    when the query runs. Answers are kept per registry snapshot, as every query built asks.
    """
    key = (kind, tuple(map(_field_of, conditions)), order)
    types = _memo.get(entries, key, _field_types, kind, conditions, order, entries)
    if types is None:
        raise IndexRequired(_no_index_message(kind, conditions, order, entries))
    for condition in added:
        _check_fits(condition, types.get(condition.field, ()))


_field_of = operator.attrgetter("field")
_shape_of = operator.attrgetter("field", "lookup")


def _field_types(
    kind: str, conditions: Sequence[Condition], order: Sequence[str], entries: Sequence[Entry]
) -> dict[str, tuple[str, ...]] | None:
    """The types each field filtered on has in the live indexes of ``kind``, or None when no
    index holds a field filtered on together with every field ordered by (those of a partial
    index's ``where`` count as held; an order on a field pinned by ``exact`` orders nothing)."""
    live = [e.index for e in entries if e.is_live and e.index.kind == kind]
    filtered = {c.field for c in conditions}
    exact = {c.field for c in conditions if c.lookup == "exact"}
    ordered = set(parse_order(order)[0]) - exact
    if not any(
        ordered <= set(i.fields) and (not filtered or filtered & (set(i.fields) | set(i.where)))
        for i in live
    ):
        return None
    fields = filtered | ordered
    found = {field: [i.fields.get(field) for i in live] for field in fields}
    return {field: tuple(dict.fromkeys(t for t in ts if t)) for field, ts in found.items()}


def _check_fits(condition: Condition, types: Sequence[str]) -> None:
    """Raise InvalidQuery when the condition's value fits none of ``types`` (if any)."""
    error = None
    for kind in types:
        try:
            condition.normalized(kind)
            return
        except WrongType as exc:
            error = exc
    if error is not None:
        raise InvalidQuery(f"filter on {condition.field!r}: {error}") from error


def _serves(
    index: Index, conditions: Sequence[Condition], order: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]] | None:
    """``(key, residual, split)``: the fields the results come ordered by (then entity id), the
    positions of the conditions the index does not drive, and the ``in`` fields to read a value
    at a time; None if the index drives no condition (of some) or cannot give the order.

    Only the shape counts here, never a value: a partial index's ``where`` is checked apart.
    Leading fields carry ``exact`` (then ``in``) conditions; the field after them may carry
    ranges; the order, if any, is on the first field not pinned by ``exact`` (or the one after
    the ``in`` fields) and continues in index order. A field pinned by ``exact`` orders nothing.
    """
    fields = list(index.fields)
    pinned = {c.field for c in conditions if c.lookup == "exact"}
    ordered = [f for f in order if f not in pinned]
    if not set(ordered) <= set(index.fields):
        return None
    exact = _leading(fields, pinned)
    equal = _leading(fields, {c.field for c in conditions if c.is_equality})
    driving = set(fields[: equal + 1]) | (set(index.where) - set(fields))
    residual = tuple(i for i, c in enumerate(conditions) if c.field not in driving)
    if conditions and len(residual) == len(conditions):
        return None
    if not ordered:
        return tuple(fields[exact:]), residual, ()
    if ordered == fields[exact : exact + len(ordered)]:
        return tuple(ordered), residual, ()
    if ordered == fields[equal : equal + len(ordered)]:
        return tuple(ordered), residual, tuple(fields[exact:equal])
    return None


def _leading(fields: list[str], names: set[str]) -> int:
    """How many leading fields are in ``names``."""
    count = 0
    while count < len(fields) and fields[count] in names:
        count += 1
    return count


def _where_holds(index: Index, conditions: Sequence[Condition]) -> bool:
    if not index.where:
        return True
    exact = {c.field: c.value for c in conditions if c.lookup == "exact"}
    return all(f in exact and _same(exact[f], v) for f, v in index.where.items())


def _check_values(index: Index, conditions: Sequence[Condition]) -> None:
    for condition in conditions:
        if condition.field in index.fields:
            try:
                condition.normalized(index.fields[condition.field])
            except WrongType as exc:
                raise InvalidQuery(f"filter on {condition.field!r}: {exc}") from exc


def _no_index_message(
    kind: str, conditions: Sequence[Condition], order: Sequence[str], entries: Sequence[Entry]
) -> str:
    wanted = ", ".join(f"{c.field}__{c.lookup}" for c in conditions) or "no filter"
    ordered = f" ordered by {', '.join(order)}" if order else ""
    existing = ", ".join(
        f"{e.index.name}({', '.join(e.index.fields)}) [{e.state}]"
        for e in entries
        if e.index.kind == kind
    )
    return (
        f"no index of {kind!r} serves {wanted}{ordered}; "
        f"indexes of {kind!r}: {existing or 'none'}; add one, or use scan()"
    )
