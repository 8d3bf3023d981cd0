"""The compilers: Django's ``Query`` objects answered by the store instead of SQL.

Django's QuerySet hands each query to a compiler of the backend (``ops.compiler_module``). These
mixins go in front of Django's own compilers; a model on a schemaless alias is answered here,
Django's ``django_migrations`` table by the SQL compiler behind. A select becomes a
:class:`~.selection.Selection` of entities (see ``where.py`` and ``selection.py``), whose rows
are built in the column order Django asks for (``self.select``) and converted by Django's
fields (``from_db_value``); ``select_related`` reads the related entities by id
(``related.py``); ``Trunc``, ``Min`` and ``Max`` are worked out on stored values
(``functions.py``). Inserts, updates and deletes are in ``writes.py``. What the store cannot
serve (joins, other aggregates and annotations, ``extra()``, set operations) raises
``NotSupportedError`` when the query is evaluated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator
from typing import Any

from django.db import NotSupportedError
from django.db.models import Count, Value
from django.db.models.expressions import Col, Ref, Star
from django.db.models.sql.constants import CURSOR, MULTI, NO_RESULTS, ROW_COUNT, SINGLE

import schemaless

from ..models import LoadedVersion, VersionField
from . import functions
from .base import is_schemaless
from .related import Joined
from .selection import PK, Order, Selection
from .where import Filter

Row = tuple[Any, ...]
Getter = Callable[[schemaless.Entity], Any]
# Query.deferred_loading of a query that defers nothing
_NOT_DEFERRED: tuple[frozenset[str], bool] = (frozenset(), True)
_MAX_SHAPES = 512


@dataclasses.dataclass
class _Shape:
    """A query shape's select, order, getters and converters (see ``_shape_key``)."""

    fields: Any  # the model's concrete fields it was made of: a changed model makes it anew
    select: list[Any]
    klass_info: Any
    annotation_col_map: Any
    meta_ordering: Any
    getters: list[Getter]
    order: list[Order]
    converters: dict[int, Any] | None = None


_SHAPES: dict[tuple[Any, ...], _Shape] = {}


class Compiler:
    """The base mixin: is the query ours, its kind, its filter, the entities it selects."""

    query: Any
    connection: Any
    using: str

    @property
    def is_schemaless(self) -> bool:
        return self.query.model is not None and is_schemaless(self.query.model)

    @property
    def kind(self) -> str:
        return str(self.query.get_meta().db_table)

    def check_supported(self, related: Collection[str] = ()) -> None:
        """NotSupportedError for what the store cannot answer; ``related``: the aliases
        select_related joined, which are read by id (``related.py``)."""
        query = self.query
        if query.combinator:
            raise NotSupportedError(f"{query.combinator}() is not supported by schemaless")
        if query.extra:
            raise NotSupportedError("extra() is not supported by schemaless")
        if getattr(query, "explain_info", None):
            raise NotSupportedError("explain() is not supported by schemaless: there is no SQL")
        joined = [a for a, count in query.alias_refcount.items() if count and a not in related]
        if len(joined) > 1:
            raise NotSupportedError("a schemaless query cannot join across models")
        if query.group_by is not None:
            raise NotSupportedError("grouping (values().annotate()) is not supported by schemaless")

    def selection(self, order: list[Order] | None = None, sliced: bool = True) -> Selection:
        query = self.query
        where = Filter.of(query.where, query.model, query.base_table, self.using)
        low, high = (query.low_mark, query.high_mark) if sliced else (0, None)
        return Selection(self.connection, self.kind, where, order or [], low, high)


class SelectCompiler(Compiler):
    """SQLCompiler: rows of the selected columns, or a count."""

    def execute_sql(
        self, result_type: str = MULTI, chunked_fetch: bool = False, chunk_size: int = 100
    ) -> Any:
        if not self.is_schemaless:
            return super().execute_sql(result_type, chunked_fetch, chunk_size)  # type: ignore[misc]
        rows = self.rows()
        if result_type == SINGLE:
            return next(iter(rows), None)
        if result_type == MULTI:
            return [rows]
        if result_type in (CURSOR, ROW_COUNT, NO_RESULTS):
            return None if result_type == NO_RESULTS else len(rows)
        raise ValueError(f"unknown result type {result_type!r}")

    def results_iter(self, results: Any = None, tuple_expected: bool = False, **kwargs: Any) -> Any:
        rows = super().results_iter(results, tuple_expected, **kwargs)  # type: ignore[misc]
        return map(tuple, rows) if self.is_schemaless and tuple_expected else rows

    def get_converters(self, expressions: Any) -> dict[int, Any]:
        """The fields' own converters only: the body holds Python values, not the strings
        that the SQL backend's converters parse."""
        if not self.is_schemaless:
            return super().get_converters(expressions)  # type: ignore[misc]
        shape: _Shape | None = getattr(self, "_shape", None)
        kept = shape is not None and _same(expressions, shape.select)
        if kept and shape is not None and shape.converters is not None:
            return shape.converters
        converters = {}
        for i, expression in enumerate(expressions):
            if expression is None or _field_of(expression) == "JSONField":
                continue
            found = expression.get_db_converters(self.connection)
            if found:
                converters[i] = (found, expression)
        if kept and shape is not None:
            shape.converters = converters
        return converters

    def rows(self) -> list[Row]:
        """The rows of the query: aggregates (counts) in one row, else one row per entity."""
        key = self._shape_key()
        shape = _SHAPES.get(key) if key is not None else None
        joined = None
        distinct = self.query.distinct
        unselected: list[Getter] = []
        if shape is not None and shape.fields is self.query.get_meta().concrete_fields:
            self._reuse(shape)  # (a distinct query has no shape key)
            self.check_supported()
            getters, order = shape.getters, shape.order
        else:
            order_by, joined = self._setup()
            selected = [expr for expr, _, _ in self.select]
            if any(getattr(e, "contains_aggregate", False) for e in selected):
                return [self._counts(selected)]
            getters = [self._getter(e) for e in selected]
            order = _order(order_by, self.query.base_table)
            if key is not None and len(self.query.alias_map) == 1:
                self._keep(key, getters, order)
            if distinct:
                unselected = [self._getter(c) for c in _unselected(order_by, selected)]
        selection = self.selection(order, sliced=not distinct)
        every = [*getters, *unselected]
        if joined is not None:
            select = [*self.select, *[(None, None, None)] * len(unselected)]
            store, found = self.connection.store, selection.entities()
            made: Iterator[Row] = iter(joined.rows(store, found, select, every))
        else:
            made = (tuple(get(entity) for get in every) for entity in selection.entities())
        if not distinct:
            return list(made)
        unique = list({_hashable(row): row[: len(getters)] for row in made}.values())
        return unique[self.query.low_mark : self.query.high_mark]

    def _setup(self) -> tuple[list[Any], Joined | None]:
        """Django's ``pre_sql_setup``: the order, and the relations a select_related query
        reads by id (``related.py``). One that cannot be read so is run without select_related:
        each related object is then read when it is touched."""
        _, order_by, _ = self.pre_sql_setup()  # type: ignore[attr-defined]
        if not self.query.select_related:
            self.check_supported()
            return order_by, None
        joined = Joined.of(self)
        if joined is None:
            self.query = self.query.clone()
            self.query.select_related = False
            _, order_by, _ = self.pre_sql_setup()  # type: ignore[attr-defined]
        self.check_supported(set() if joined is None else joined.aliases)
        return order_by, joined

    def _shape_key(self) -> tuple[Any, ...] | None:
        """The key of the query's shape, when its select and order are those of every query
        of that key (the model's columns, an order by field names, one table): None else.

        Django's ``pre_sql_setup`` compiles the select and order to SQL on every call, which
        the store does not read; a shape made once (``_keep``) is reused (``_reuse``).
        """
        query = self.query
        if (
            not query.default_cols
            or query.selected is not None
            or query.annotations
            or query.extra
            or query.extra_order_by
            or query.combinator
            or query.distinct
            or query.group_by is not None
            or query.select_related
            or query.deferred_loading != _NOT_DEFERRED
            or not all(type(name) is str for name in query.order_by)
        ):
            return None
        if all(query.alias_refcount[a] == 0 for a in query.alias_map):  # as setup_query does
            query.get_initial_alias()
        if len(query.alias_map) != 1:
            return None
        return (
            self.connection.alias,
            query.model,
            query.base_table,
            query.order_by,
            query.default_ordering,
            query.standard_ordering,
        )

    def _keep(self, key: tuple[Any, ...], getters: list[Getter], order: list[Order]) -> None:
        """What ``pre_sql_setup`` made of this shape, for the next query of it."""
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[key] = _Shape(
            fields=self.query.get_meta().concrete_fields,
            select=list(self.select),
            klass_info=self.klass_info,
            annotation_col_map=self.annotation_col_map,
            meta_ordering=self._meta_ordering,
            getters=getters,
            order=order,
        )

    def _reuse(self, shape: _Shape) -> None:
        """The compiler's state as ``pre_sql_setup`` leaves it, from a kept shape."""
        self.select = list(shape.select)
        self.klass_info = dict(shape.klass_info)
        self.annotation_col_map = dict(shape.annotation_col_map)
        self.col_count = len(shape.select)
        self._meta_ordering = shape.meta_ordering
        self.has_extra_select = False
        self.where, self.having, self.qualify = self.query.where.split_having_qualify(
            must_group_by=False
        )
        self._shape = shape

    def _counts(self, selected: list[Any]) -> Row:
        """The row of ``aggregate()``: counts of rows from the index where it serves, counts
        of a field's values (NULLs left out, or distinct ones) from the entities, Min and Max
        from the first entity in the field's order (``functions.py``)."""
        row: list[Any] = []
        total = None
        for expression in selected:
            extreme = functions.extreme(expression)
            if extreme is not None:
                col, largest = extreme
                row.append(self.selection().extreme(_key(col), largest))
                continue
            if not isinstance(expression, Count) or expression.filter:
                raise _aggregate_unsupported(expression)
            source = expression.get_source_expressions()[0]
            counts_rows = isinstance(source, Star) or (
                isinstance(source, Col) and (source.target.primary_key or not source.target.null)
            )
            if counts_rows and not _is_distinct(expression):
                total = self.selection().count() if total is None else total
                row.append(total)
            elif isinstance(source, Col):
                values = self.selection().values_of(_key(source))
                row.append(_tally(values, _is_distinct(expression)))
            else:
                raise _aggregate_unsupported(expression)
        return tuple(row)

    def _getter(self, expression: Any) -> Getter:
        if isinstance(expression, Ref):
            expression = _referenced(expression)
        if isinstance(expression, Value):
            constant = expression.value
            return lambda _entity: constant
        truncated = functions.truncation(expression)
        if truncated is not None:
            return functions.truncating(expression, self._getter(truncated))
        if not isinstance(expression, Col):
            raise NotSupportedError(f"{expression!r}: annotations are not supported by schemaless")
        field: Any = expression.target
        if field.primary_key:
            return lambda entity: entity.id
        if isinstance(field, VersionField):
            return version_of
        column = field.column
        if not field.has_default():
            return lambda entity: entity._body.get(column)
        body = entity_body
        return lambda entity: body(entity, column, field)


class AggregateCompiler(Compiler):
    """SQLAggregateCompiler: count() over a sliced or distinct query, by running it."""

    def execute_sql(self, result_type: str = MULTI, *args: Any, **kwargs: Any) -> Any:
        if not self.is_schemaless:
            return super().execute_sql(result_type, *args, **kwargs)  # type: ignore[misc]
        inner = self.query.inner_query.get_compiler(self.using, self.connection)
        rows = inner.rows()
        positions = {alias: n for n, (_, _, alias) in enumerate(inner.select)}
        counts = []
        for aggregate in self.query.annotation_select.values():
            if not isinstance(aggregate, Count) or aggregate.filter:
                raise NotSupportedError(
                    f"{aggregate!r}: schemaless answers no aggregate but count()"
                )
            counts.append(_count(aggregate, rows, positions))
        row = tuple(counts)
        return row if result_type == SINGLE else [[row]]


def _aggregate_unsupported(expression: Any) -> NotSupportedError:
    return NotSupportedError(
        f"{expression!r}: schemaless answers no aggregate but count(), Min and Max"
    )


def version_of(entity: schemaless.Entity) -> LoadedVersion:
    """The entity's version as Django code sees it, with the body a save merges into."""
    return LoadedVersion.of(entity.version, entity.id, entity._body)


def _count(aggregate: Any, rows: list[Row], positions: dict[str, int]) -> int:
    source = aggregate.get_source_expressions()[0]
    if isinstance(source, Star):
        return len(rows)
    refs = getattr(source, "refs", None) if isinstance(source, Ref) else None
    if refs not in positions:
        raise NotSupportedError(f"{aggregate!r} is not supported by schemaless")
    return _tally([row[positions[refs]] for row in rows], _is_distinct(aggregate))


def _tally(values: list[Any], distinct: bool) -> int:
    """What COUNT(field) counts of ``values``: those not NULL, or the distinct ones of them."""
    present = [v for v in values if v is not None]
    return len({_hashable(v) for v in present}) if distinct else len(present)


def _order(order_by: list[Any], alias: str) -> list[Order]:
    made = []
    for expression, _ in order_by:
        target = expression.expression
        if isinstance(target, Ref):
            target = _referenced(target)
        target = functions.truncation(target) or target  # truncating keeps the order
        if not isinstance(target, Col):
            raise NotSupportedError(f"order_by({target!r}): schemaless orders by fields only")
        if target.alias != alias:
            raise NotSupportedError("a schemaless query cannot order across models")
        descending = bool(expression.descending)
        moved = expression.nulls_last if not descending else expression.nulls_first
        made.append(Order(_key(target), descending, bool(moved)))
    return made


def _unselected(order_by: list[Any], selected: list[Any]) -> list[Col]:
    """The columns a distinct query orders by but does not select. Django's SQL selects them
    too (``SQLCompiler.get_extra_select``), so rows that differ only there stay apart."""
    found = []
    for expression, (_sql, _params, is_ref) in order_by:
        target = expression.expression
        if not is_ref and isinstance(target, Col) and target not in selected:
            found.append(target)
    return found


def _key(col: Col) -> str:
    """The Selection key of a field's column: PK for the pk, else its body key."""
    field: Any = col.target
    return PK if field.primary_key else str(field.column)


def _same(expressions: Any, select: list[Any]) -> bool:
    """Whether ``expressions`` are the selected expressions, one for one."""
    return len(expressions) == len(select) and all(
        e is s[0] for e, s in zip(expressions, select, strict=True)
    )


def _field_of(expression: Any) -> str | None:
    field = getattr(expression, "target", None) or getattr(expression, "output_field", None)
    try:
        return str(field.get_internal_type()) if field is not None else None
    except Exception:
        return None


def entity_body(entity: schemaless.Entity, column: str, field: Any) -> Any:
    """The column's value; an entity stored before the field existed reads its default."""
    body = entity._body
    return body[column] if column in body else field.get_default()


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _referenced(ref: Ref) -> Any:
    """The expression a Ref (an alias in ORDER BY or an aggregate) stands for."""
    return ref.get_source_expressions()[0]


def _is_distinct(aggregate: Any) -> bool:
    return bool(aggregate.distinct)
