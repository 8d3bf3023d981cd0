"""Entity ids: 16 random bytes, shown to users as :class:`uuid.UUID`.

Every public call that takes an id accepts a UUID, its ``str()`` form, 32 hex digits or the 16
raw bytes, so ids read back from a URL, a form or another database need no conversion first.
Anything else raises :class:`~schemaless.errors.InvalidId` before any SQL is sent.
"""

from __future__ import annotations

import re
import uuid

from .errors import InvalidId, InvalidName

IdLike = uuid.UUID | str | bytes

_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


def new_id() -> uuid.UUID:
    """A fresh random (version 4) id."""
    return uuid.uuid4()


def to_uuid(value: object) -> uuid.UUID:
    """Turn any accepted id form into a UUID, or raise InvalidId."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return uuid.UUID(bytes=bytes(value))
        if isinstance(value, str) and len(value) in (32, 36):
            return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidId(f"invalid entity id {value!r:.60}") from exc
    raise InvalidId(f"invalid entity id {value!r:.60}")


def to_bytes(value: object) -> bytes:
    """The 16-byte form stored in BINARY(16) columns."""
    return to_uuid(value).bytes


def check_name(name: object, what: str = "name") -> str:
    """Validate a kind, index or field name, so it can be used as an identifier safely."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidName(f"invalid {what} {name!r:.60}: must match [a-z][a-z0-9_]{{0,47}}")
    return name
