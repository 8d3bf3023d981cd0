"""Entity: one stored body, with the id, kind and version it was read or written at."""

from __future__ import annotations

import copy
import uuid
from typing import Any


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
        return copy.deepcopy(self._body)

    def __getitem__(self, field: str) -> Any:
        return self._body[field]

    def __contains__(self, field: object) -> bool:
        return field in self._body

    def get(self, field: str, default: Any = None) -> Any:
        return self._body.get(field, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity):
            return NotImplemented
        return (self.id, self.version, self._body) == (other.id, other.version, other._body)

    def __hash__(self) -> int:
        return hash((self.id, self.version))

    def __repr__(self) -> str:
        return f"<Entity {self.kind} {self.id} v{self.version}>"
