"""Unsupported: the QuerySet methods Django has and the store cannot answer exactly.

Each raises ``django.db.NotSupportedError`` saying why, rather than returning something close
(the trap of a look-alike API). The reasons, one per method, are the table below.
"""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError

_AGGREGATE = "aggregates need every row; count() is served by the index"
_ANNOTATE = "annotations are computed in SQL over columns the entities do not have"
_COMBINE = "combined queries cannot be planned on one index; run each and merge"
_EXPLAIN = "the plan is the store's; see schemaless.Query.plan()"

REASONS = {
    "aggregate": _AGGREGATE,
    "aaggregate": _AGGREGATE,
    "annotate": _ANNOTATE,
    "alias": _ANNOTATE,
    "extra": "there are no columns to add SQL to",
    "raw": "entities are blobs; raw SQL cannot read them",
    "defer": "an entity is read whole",
    "only": "an entity is read whole",
    "select_for_update": "writes are compare-and-set on the entity's version instead",
    "dates": "it aggregates over every row",
    "datetimes": "it aggregates over every row",
    "union": _COMBINE,
    "intersection": _COMBINE,
    "difference": _COMBINE,
    "__and__": _COMBINE,
    "__or__": _COMBINE,
    "__xor__": _COMBINE,
    "using": "a model lives in the shards of SCHEMALESS['DATABASES']",
    "explain": _EXPLAIN,
    "aexplain": _EXPLAIN,
}


def _refusal(name: str, why: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(f"{name}() is not supported by schemaless: {why}")

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Raises NotSupportedError: {why}."
    return method


class Unsupported:
    """Mixed into QuerySet: one refusing method per entry of REASONS."""


for _name, _why in REASONS.items():
    setattr(Unsupported, _name, _refusal(_name, _why))
