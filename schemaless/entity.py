"""Entity: one stored body, with the id, kind and version it was read or written at."""

from __future__ import annotations

import copy
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# Leaves that a copy may share: nothing can change them in place.
_IMMUTABLE = frozenset(
    {str, bytes, int, float, bool, type(None), datetime, date, Decimal, uuid.UUID}
)


class Entity:
    """An immutable view of a stored entity.

    ``body`` hands out a copy, so changing it never changes what the store or this object
    holds; write the changed dict back with ``store.put(kind, body, id=e.id)``.

        >>> e = store.put("entry", {"title": "hi"})
        >>> e["title"], e.version
        ('hi', 1)
    """

    __slots__ = ("_id", "kind", "version", "_body")

    def __init__(
        self, id: uuid.UUID | bytes, kind: str, version: int, body: dict[str, Any]
    ) -> None:
        self._id = id  # or the 16 bytes of a row a query read: made a UUID when first asked for
        self.kind = kind
        self.version = version
        self._body = body

    @property
    def id(self) -> uuid.UUID:
        entity_id = self._id
        if type(entity_id) is bytes:
            # A query returns pages of entities whose ids are often never asked for, and
            # UUID(bytes=...) cost it as much as decoding a small body.
            entity_id = self._id = uuid.UUID(bytes=entity_id)
        return entity_id  # type: ignore[return-value]

    @property
    def body(self) -> dict[str, Any]:
        return _copied(self._body)

    def __getitem__(self, field: str) -> Any:
        return self._body[field]

    def __contains__(self, field: object) -> bool:
        return field in self._body

    def get(self, field: str, default: Any = None) -> Any:
        return self._body.get(field, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity):
            return NotImplemented
        if (self.id, self.version) != (other.id, other.version):
            return False
        try:
            return self._body == other._body
        except RecursionError:  # a body nested near the codec's limit of 1,024 levels
            return _equal(self._body, other._body)

    def __hash__(self) -> int:
        return hash((self.id, self.version))

    def __repr__(self) -> str:
        return f"<Entity {self.kind} {self.id} v{self.version}>"


def _copied(body: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a body, made without recursion.

    ``copy.deepcopy`` recurses twice per level, so a body nested a few hundred levels deep,
    which ``put`` accepts and ``get`` reads back (msgpack nests up to 1,024), raised
    RecursionError here. A decoded body is a tree of dicts and lists over immutable leaves, so
    copying its containers is a deep copy; anything else (a pickled object) goes to deepcopy.
    """
    top = dict(body)
    stack: list[Any] = [top]
    while stack:
        container = stack.pop()
        keys = container.keys() if type(container) is dict else range(len(container))
        for key in keys:  # values are replaced in place: the dict never changes size
            value = container[key]
            kind = type(value)
            if kind is dict or kind is list:
                container[key] = kind(value)
                stack.append(container[key])
            elif kind not in _IMMUTABLE:
                container[key] = copy.deepcopy(value)
    return top


def _equal(left: Any, right: Any) -> bool:
    """``left == right`` for bodies too deep for Python's recursive comparison."""
    stack = [(left, right)]
    while stack:
        a, b = stack.pop()
        if type(a) is not type(b) or type(a) not in (dict, list):
            if a != b:
                return False
        elif len(a) != len(b) or (type(a) is dict and a.keys() != b.keys()):
            return False
        else:
            keys = a.keys() if type(a) is dict else range(len(a))
            stack.extend((a[k], b[k]) for k in keys)
    return True
