"""QuerySet: Django's lazy, chainable query API over the entities of one model's kind.

Building never touches the database: each method returns a clone holding the lookups, the
exclusions, the order and the slice. Evaluating (iteration, ``len``, ``bool``, an index,
``list``) runs it once and caches the instances. Lookups on ``pk`` / ``id`` fetch those ids
(``store.get_many``); other filters go through ``store.query(kind)``, whose planner picks an
index or raises ``IndexRequired`` / ``IndexNotReady``: a filter no index serves is never
answered by a silent scan. Exclusions are checked against each fetched body.

What cannot be answered exactly raises ``django.db.NotSupportedError``: joins, aggregates,
``annotate``, ``select_related`` / ``prefetch_related`` with arguments, ``distinct`` on fields,
``raw``, ``extra``, ``defer`` / ``only``, ``union`` and the like, ordering by ``pk`` (ids are
random) and ``last()`` of a listing that has no order. The writes live in
:mod:`schemaless.django.writes`; the async twins (``aget``, ``acount`` ...) run the sync method
in a thread with ``sync_to_async``, as Django's do.

    >>> Entry.objects.filter(user_id=7).order_by("-published")[:20]
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import NotSupportedError

from schemaless import Entity

from .runner import CHUNK_SIZE, Runner, State
from .unsupported import Unsupported
from .where import check_order_name, flatten, value_names
from .writes import Writes

MAX_GET_RESULTS = 21
REPR_OUTPUT_SIZE = 20


class QuerySet(Writes, Unsupported):
    """A lazy query over one model; see the module docstring."""

    def __init__(self, model: Any = None, *, state: State | None = None) -> None:
        self.model = model
        self._state = state or State()
        self._result_cache: list[Any] | None = None

    # -- building ------------------------------------------------------------------------------

    def all(self) -> QuerySet:
        return self._chain()

    def none(self) -> QuerySet:
        return self._chain(empty=True)

    def filter(self, *args: Any, **kwargs: Any) -> QuerySet:
        """Keep entities matching every lookup; ``Q`` objects may AND, negate, or OR one field."""
        self._check_unsliced("filter", args or kwargs)
        where, excluded = flatten(self.model._meta, args, kwargs)
        st = self._state
        return self._chain(where=st.where + tuple(where), excluded=st.excluded + tuple(excluded))

    def exclude(self, *args: Any, **kwargs: Any) -> QuerySet:
        """Drop entities matching all the lookups given; checked on the fetched bodies."""
        self._check_unsliced("filter", args or kwargs)
        where, excluded = flatten(self.model._meta, args, kwargs)
        if excluded:
            raise NotSupportedError("exclude() of a negated Q is a filter(); write it so")
        if not where:
            return self._chain()
        return self._chain(excluded=self._state.excluded + (tuple(where),))

    def complex_filter(self, filter_obj: Any) -> QuerySet:
        if isinstance(filter_obj, dict):
            return self.filter(**filter_obj)
        return self.filter(filter_obj)

    def order_by(self, *field_names: str) -> QuerySet:
        """Order by model fields (``-name`` descending); no names clears any ordering."""
        self._check_unsliced("reorder", True)
        for name in field_names:
            check_order_name(self.model._meta, name)
        return self._chain(order=tuple(field_names))

    def reverse(self) -> QuerySet:
        self._check_unsliced("reverse", True)
        return self._chain(reversed=not self._state.reversed)

    def distinct(self, *field_names: str) -> QuerySet:
        """Results are distinct entities already; distinct on fields is not supported."""
        if self._sliced:
            raise TypeError("Cannot create distinct fields once a slice has been taken.")
        if field_names:
            raise NotSupportedError("distinct(*fields) is not supported by schemaless")
        return self._chain()

    def select_related(self, *fields: Any) -> QuerySet:
        """Without arguments there is no relation to follow, so nothing changes."""
        if fields and fields != (None,):
            raise NotSupportedError("select_related() would join another model; not supported")
        return self._chain()

    def prefetch_related(self, *lookups: Any) -> QuerySet:
        if lookups and lookups != (None,):
            raise NotSupportedError("prefetch_related() follows relations; not supported")
        return self._chain()

    def values(self, *fields: str, **expressions: Any) -> QuerySet:
        """Dicts of the named fields (all by default), as Django's values()."""
        if expressions:
            raise NotSupportedError("values() with expressions is not supported by schemaless")
        return self._chain(fields=value_names(self.model._meta, fields), shape="dict")

    def values_list(self, *fields: str, flat: bool = False, named: bool = False) -> QuerySet:
        if flat and named:
            raise TypeError("'flat' and 'named' can't be used together.")
        if flat and len(fields) > 1:
            raise TypeError(
                "'flat' is not valid when values_list is called with more than one field."
            )
        shape = "flat" if flat else "named" if named else "tuple"
        return self._chain(fields=value_names(self.model._meta, fields), shape=shape)

    @property
    def ordered(self) -> bool:
        """Whether results come in a defined order (Paginator warns when they do not)."""
        st = self._state
        return st.empty or bool(st.order) or (st.order is None and bool(self.model._meta.ordering))

    # -- reading ------------------------------------------------------------------------------

    def count(self) -> int:
        """The number of matches; through the index alone when nothing needs a body check."""
        if self._result_cache is not None:
            return len(self._result_cache)
        if self._state.empty:
            return 0
        runner = self._runner()
        if runner.needs_bodies():
            return sum(1 for _ in runner.entities())
        return runner.query(ordered=False).count()

    def exists(self) -> bool:
        if self._result_cache is not None:
            return bool(self._result_cache)
        if self._state.empty:
            return False
        runner = self._runner()
        if runner.needs_bodies():
            return next(runner.entities(), None) is not None
        return runner.query(ordered=False).exists()

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """The one match; ``DoesNotExist`` or ``MultipleObjectsReturned`` otherwise."""
        clone = self.filter(*args, **kwargs) if args or kwargs else self._chain()
        if not clone._sliced:
            clone = clone.order_by()
        clone = clone._limited(None, MAX_GET_RESULTS)
        num = len(clone)
        name = self.model._meta.object_name
        if num == 1:
            return clone._result_cache[0]  # type: ignore[index]
        if not num:
            raise self.model.DoesNotExist(f"{name} matching query does not exist.")
        many = num if num < MAX_GET_RESULTS else f"more than {MAX_GET_RESULTS - 1}"
        raise self.model.MultipleObjectsReturned(
            f"get() returned more than one {name} -- it returned {many}!"
        )

    def first(self) -> Any:
        """The first result, or None; an unordered query gives its natural (index) order."""
        for obj in self[:1]:
            return obj
        return None

    def last(self) -> Any:
        """The last result, or None: the first of the reversed order."""
        if self.ordered:
            queryset = self.reverse()
        elif self._runner().pk_ids() is not None:
            found = list(self)
            return found[-1] if found else None
        else:
            key = self._runner().query(ordered=False).plan().key
            if not key:
                raise NotSupportedError(
                    "last() of an unordered listing has no reverse; call order_by() first"
                )
            queryset = self.order_by(*(f"-{name}" for name in key))
        for obj in queryset[:1]:
            return obj
        return None

    def earliest(self, *fields: str) -> Any:
        if self._sliced:
            raise TypeError("Cannot change a query once a slice has been taken.")
        return self._earliest(*fields)

    def latest(self, *fields: str) -> Any:
        if self._sliced:
            raise TypeError("Cannot change a query once a slice has been taken.")
        return self.reverse()._earliest(*fields)

    def in_bulk(self, id_list: Any = None, *, field_name: str = "pk") -> dict[Any, Any]:
        """``{pk: instance}`` for the ids given (every match when None), in one fetch."""
        if self._sliced:
            raise TypeError("Cannot use 'limit' or 'offset' with in_bulk().")
        if self._state.shape != "model":
            raise TypeError("in_bulk() cannot be used with values() or values_list().")
        if field_name != "pk" and not self.model._meta.get_field(field_name).unique:
            raise ValueError(
                f"in_bulk()'s field_name must be a unique field but {field_name!r} isn't."
            )
        if id_list is not None:
            id_list = tuple(id_list)
            if not id_list:
                return {}
            queryset = self.filter(**{f"{field_name}__in": id_list})
        else:
            queryset = self._chain()
        return {getattr(obj, field_name): obj for obj in queryset}

    def contains(self, obj: Any) -> bool:
        if self._state.shape != "model":
            raise TypeError("Cannot call QuerySet.contains() after .values() or .values_list().")
        if not hasattr(obj, "_meta"):
            raise TypeError("'obj' must be a model instance.")
        if obj._meta.concrete_model is not self.model._meta.concrete_model:
            return False
        if obj.pk is None:
            raise ValueError("QuerySet.contains() cannot be used on unsaved objects.")
        if self._result_cache is not None:
            return obj in self._result_cache
        return self.filter(pk=obj.pk).exists()

    def iterator(self, chunk_size: int | None = None) -> Iterator[Any]:
        """Stream the results in keyset pages of ``chunk_size`` (2000), caching nothing."""
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError("Chunk size must be strictly positive.")
        runner = self._runner()
        return runner.rows(runner.stream(chunk_size or CHUNK_SIZE))

    async def aiterator(self, chunk_size: int = CHUNK_SIZE) -> Any:
        if chunk_size <= 0:
            raise ValueError("Chunk size must be strictly positive.")
        runner = self._runner()
        chunks = runner.rows(runner.stream(chunk_size))
        while page := await sync_to_async(_take)(chunks, chunk_size):
            for row in page:
                yield row

    # -- evaluation ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        self._fetch_all()
        return iter(self._result_cache)  # type: ignore[arg-type]

    def __aiter__(self) -> Any:
        async def generator() -> Any:
            await sync_to_async(self._fetch_all)()
            for item in self._result_cache:  # type: ignore[union-attr]
                yield item

        return generator()

    def __len__(self) -> int:
        self._fetch_all()
        return len(self._result_cache)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        self._fetch_all()
        return bool(self._result_cache)

    def __getitem__(self, k: int | slice) -> Any:
        if not isinstance(k, (int, slice)):
            raise TypeError(f"QuerySet indices must be integers or slices, not {type(k).__name__}.")
        if (isinstance(k, int) and k < 0) or (
            isinstance(k, slice)
            and ((k.start is not None and k.start < 0) or (k.stop is not None and k.stop < 0))
        ):
            raise ValueError("Negative indexing is not supported.")
        if self._result_cache is not None:
            return self._result_cache[k]
        if isinstance(k, slice):
            start = None if k.start is None else int(k.start)
            stop = None if k.stop is None else int(k.stop)
            qs = self._limited(start, stop)
            return list(qs)[:: k.step] if k.step else qs
        qs = self._limited(k, k + 1)
        qs._fetch_all()
        return qs._result_cache[0]  # type: ignore[index]

    def __repr__(self) -> str:
        data: list[Any] = list(self[: REPR_OUTPUT_SIZE + 1])
        if len(data) > REPR_OUTPUT_SIZE:
            data[-1] = "...(remaining elements truncated)..."
        return f"<{type(self).__name__} {data!r}>"

    def __deepcopy__(self, memo: dict[int, Any]) -> QuerySet:
        return self._chain()

    def __class_getitem__(cls, *args: Any) -> type:
        return cls

    @classmethod
    def as_manager(cls) -> Any:
        from .manager import Manager

        manager = Manager.from_queryset(cls)()
        manager._built_with_as_manager = True
        return manager

    as_manager.queryset_only = True  # type: ignore[attr-defined]

    # -- internals ------------------------------------------------------------------------------

    def _chain(self, **changes: Any) -> QuerySet:
        state = dataclasses.replace(self._state, **changes) if changes else self._state
        return type(self)(self.model, state=state)

    @property
    def _sliced(self) -> bool:
        return self._state.sliced

    def _check_unsliced(self, what: str, given: Any) -> None:
        if given and self._sliced:
            raise TypeError(f"Cannot {what} a query once a slice has been taken.")

    def _limited(self, low: int | None, high: int | None) -> QuerySet:
        """Django's set_limits: a slice of a slice narrows it."""
        st = self._state
        new_low, new_high = st.low, st.high
        if high is not None:
            new_high = new_low + high if new_high is None else min(new_high, new_low + high)
        if low is not None:
            new_low = new_low + low if new_high is None else min(new_high, new_low + low)
        empty = st.empty or new_low == new_high
        return self._chain(low=new_low, high=new_high, empty=empty)

    def _earliest(self, *fields: str) -> Any:
        order = fields or self.model._meta.get_latest_by
        if isinstance(order, str):
            order = (order,)
        if not order:
            raise ValueError(
                "earliest() and latest() require either fields as positional arguments or "
                "'get_latest_by' in the model's Meta."
            )
        return self.order_by(*order)._limited(None, 1).get()

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            runner = self._runner()
            self._result_cache = list(runner.rows(runner.entities()))

    def _entity_list(self) -> list[Entity]:
        return list(self._runner().entities())

    def _runner(self) -> Runner:
        return Runner(self.model, self._state)


def _take(rows: Iterator[Any], count: int) -> list[Any]:
    return list(itertools.islice(rows, count))


def _async(name: str) -> Any:
    async def method(self: QuerySet, *args: Any, **kwargs: Any) -> Any:
        return await sync_to_async(getattr(self, name))(*args, **kwargs)

    method.__name__ = method.__qualname__ = f"a{name}"
    method.__doc__ = f"The async twin of {name}(), run in a thread by sync_to_async."
    return method


for _name in (
    "get",
    "count",
    "exists",
    "first",
    "last",
    "earliest",
    "latest",
    "in_bulk",
    "contains",
    "create",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "bulk_update",
    "update",
    "delete",
):
    setattr(QuerySet, f"a{_name}", _async(_name))
QuerySet.adelete.queryset_only = True  # type: ignore[attr-defined]
