"""The one exception tree of schemaless.

    SchemalessError
    ├── NotFound (KeyError)        ├── InvalidId (ValueError)
    ├── Conflict                   ├── EncodeError / DecodeError / EntityTooLarge
    ├── InvalidName                ├── IndexRequired / IndexNotReady
    ├── InvalidQuery (ValueError)  ├── ConfigurationError
    ├── BucketMoved                (a shard refused a write for a bucket it does not own)
    └── ShardUnavailable           (names the shard: .shard)
        ├── OutcomeUnknown         (the connection broke after COMMIT was sent)
        └── ShardBusy              (lock wait timeout, deadlock, certification conflict)

Every class takes its default message from its own docstring, so raising one bare still says
something useful; callers pass a message naming the key or name at fault, never a whole body.
Driver errors are caught at one boundary, the shard layer (``shard.py``), and re-raised as ours
with ``raise ... from exc``: no driver or SQLAlchemy exception escapes a public call.
"""

from __future__ import annotations


class SchemalessError(Exception):
    """Something went wrong in schemaless."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the message; keep it readable.
        return self.message


class NotFound(SchemalessError, KeyError):
    """No entity has that id."""


class Conflict(SchemalessError):
    """The entity's version is not the one the write expected."""


class InvalidId(SchemalessError, ValueError):
    """An entity id must be a UUID, its str() form, 32 hex digits or 16 bytes."""


class EncodeError(SchemalessError):
    """The body holds a value that cannot be stored."""


class DecodeError(SchemalessError):
    """A stored body cannot be read back."""


class EntityTooLarge(SchemalessError):
    """The encoded body is larger than the configured limit."""


class InvalidName(SchemalessError):
    """A kind, index or field name must match [a-z][a-z0-9_]{0,47}."""


class InvalidQuery(SchemalessError, ValueError):
    """A filter names an unknown lookup, or gives a value its field cannot hold."""


class IndexRequired(SchemalessError):
    """No ready index serves this query; add one, or use scan()."""


class IndexNotReady(SchemalessError):
    """The index that serves this query is still being built."""


class ShardUnavailable(SchemalessError):
    """A shard's database cannot be reached: it refused, timed out or dropped the connection."""

    def __init__(self, message: str | None = None, *, shard: str | None = None) -> None:
        super().__init__(message)
        self.shard = shard


class OutcomeUnknown(ShardUnavailable):
    """The connection broke after COMMIT was sent: the write may or may not have happened."""


class ShardBusy(ShardUnavailable):
    """A shard's locks stayed contended (lock wait timeout, deadlock) through every retry."""


class ConfigurationError(SchemalessError):
    """The store's configuration is not usable."""


class BucketMoved(SchemalessError):
    """A shard refused a write for a bucket it does not own (moved away, or being moved).

    The store reloads the bucket map and writes again on the new owner; this escapes only when
    a move keeps the bucket frozen past the store's wait (``shards.MOVE_WAIT``).
    """

    def __init__(self, message: str | None = None, *, shard: str | None = None) -> None:
        super().__init__(message)
        self.shard = shard
