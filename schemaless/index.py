"""Index: the definition of one secondary index, and the rows it holds for an entity.

An index names a kind, typed fields in key order, an optional ``shard_on`` field (index rows live
on the shard of that value, so a query pinning it reads one shard) and an optional ``where`` of
equalities that makes it partial. ``descending`` names the fields whose key columns are stored
descending (a query reads an index either way; the way it is stored reads forward, which InnoDB
does faster: newest first for a feed). A missing field or None is indexed as NULL, so a query on
the leading fields never misses an entity; a list makes one row per element (multi-valued).
``defaults`` gives a field the value that an entity lacking it (one stored before the field
existed) is indexed as, and that queries check it as, so a filter agrees with a load that reads
the default.

    >>> Index("entry_by_user", kind="entry",
    ...       fields={"user_id": "int", "published": "datetime"}, shard_on="user_id")
    >>> Index("entry_by_user_newest", kind="entry",
    ...       fields={"user_id": "int", "published": "datetime"}, descending=["published"])
    >>> Index("entry_by_state", kind="entry", fields={"state": "str"}, defaults={"state": "new"})
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import math
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from .errors import ConfigurationError, InvalidName
from .ids import check_name
from .tables import FIELD_TYPES

RESERVED = ("entity_id", "version", "entity_row")  # the index table's own columns
MAX_ROWS = 1000  # per entity; a larger product of list fields is left out of the index
MAX_LENGTH = 255


class WrongType(ValueError):
    """A body value that the index field's type cannot hold; the entity is left out."""


class Index:
    """An immutable index definition; equal when the definitions are equal."""

    __slots__ = ("name", "kind", "fields", "shard_on", "where", "defaults", "descending")

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        fields: Mapping[str, str],
        shard_on: str | None = None,
        where: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        descending: Collection[str] = (),
    ) -> None:
        self.name = check_name(name, "index name")
        self.kind = check_name(kind, "kind")
        # Wrong types are refused here by name: a list for shard_on would otherwise surface as
        # "unhashable type", a list of pairs for fields as a missing .items().
        if not isinstance(fields, Mapping):
            raise ConfigurationError(
                f"index {name!r}: fields must map each field to its type, like "
                f"{{'user_id': 'int'}}, not a {type(fields).__name__}"
            )
        if where is not None and not isinstance(where, Mapping):
            raise ConfigurationError(
                f"index {name!r}: where must map fields to values, not a {type(where).__name__}"
            )
        if shard_on is not None and not isinstance(shard_on, str):
            raise ConfigurationError(
                f"index {name!r}: shard_on must name one field (a str), "
                f"not a {type(shard_on).__name__}"
            )
        self.fields = dict(_check_fields(fields))
        if shard_on is not None and shard_on not in self.fields:
            raise ConfigurationError(f"shard_on {shard_on!r} is not a field of index {name!r}")
        self.shard_on = shard_on
        self.where = dict(_check_where(where or {}))
        self.defaults = dict(_check_defaults(name, self.fields, defaults or {}))
        self.descending = _check_descending(name, self.fields, descending)

    # -- identity ------------------------------------------------------------------------------

    def definition(self) -> str:
        """The JSON stored in the registry; equal definitions mean the same index."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "fields": list(self.fields.items()),
            "shard_on": self.shard_on,
            "where": sorted(self.where.items()),
        }
        if self.defaults:  # only then: the definitions stored before defaults stay equal
            data["defaults"] = sorted(
                (f, _to_json(self.fields[f], v)) for f, v in self.defaults.items()
            )
        if self.descending:  # likewise
            data["descending"] = list(self.descending)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_definition(cls, text: str) -> Index:
        data = json.loads(text)
        fields = dict(data["fields"])
        return cls(
            data["name"],
            kind=data["kind"],
            fields=fields,
            shard_on=data["shard_on"],
            where=dict(data["where"]),
            defaults={f: _from_json(fields[f], v) for f, v in data.get("defaults", ())},
            descending=data.get("descending", ()),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and self.definition() == other.definition()

    def __hash__(self) -> int:
        return hash(self.definition())

    def __repr__(self) -> str:
        extra = f", shard_on={self.shard_on!r}" if self.shard_on else ""
        extra += f", where={self.where!r}" if self.where else ""
        extra += f", defaults={self.defaults!r}" if self.defaults else ""
        extra += f", descending={list(self.descending)!r}" if self.descending else ""
        return f"Index({self.name!r}, kind={self.kind!r}, fields={self.fields!r}{extra})"

    # -- rows ----------------------------------------------------------------------------------

    def covers(self, body: Mapping[str, Any]) -> bool:
        """Whether a partial index's ``where`` holds for this body."""
        return all(_equal(body.get(k), v) for k, v in self.where.items())

    def rows(self, body: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The index rows (field values in key order) this body should have.

        Raises WrongType when a value does not fit its field's type: that entity is left out.
        """
        if self.defaults:
            body = self.with_defaults(body)
        if self.where and not self.covers(body):
            return []
        row = []
        for field, kind in self.fields.items():
            value = body.get(field)
            if isinstance(value, list):
                return self._combined(body)
            row.append(normalize(kind, value, field))
        return [tuple(row)]  # no list field: one row, the common case, made without products

    def with_defaults(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The body with each field it lacks set to its default (the body itself if none)."""
        if all(field in body for field in self.defaults):
            return body
        return {**self.defaults, **body}

    def _combined(self, body: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """One row per combination of the elements of the list fields, each row once."""
        choices = [
            self._values(field, kind, body.get(field)) for field, kind in self.fields.items()
        ]
        count = 1
        for values in choices:
            count *= len(values)
        if count > MAX_ROWS:
            raise WrongType(f"{count} rows for one entity in index {self.name!r}")
        return list(dict.fromkeys(itertools.product(*choices)))

    def _values(self, field: str, kind: str, value: Any) -> list[Any]:
        if isinstance(value, list):
            return [normalize(kind, v, field) for v in value] or [None]
        return [normalize(kind, value, field)]


def normalize(kind: str, value: Any, field: str = "?") -> Any:
    """The value as the index column holds it; None stays None (NULL).

    Raises WrongType for a value of another type, and for one of the right type that the column
    cannot hold (NaN, an infinity, an int past 64 bits, a str over 255 characters, a datetime
    that overflows once made UTC): a database would refuse the row and stop the whole batch.
    """
    if value is None:
        return None
    try:
        return _NORMALIZERS[kind](value)
    except (TypeError, ValueError, ArithmeticError) as exc:
        why = "" if isinstance(exc, TypeError) else f" ({_reason(exc)})"
        name = type(value).__name__
        raise WrongType(f"field {field!r}: {name} does not fit {kind}{why}") from exc


def _reason(exc: Exception) -> str:
    """Why a value of the right type does not fit; never the value itself (it is user data)."""
    if isinstance(exc, OverflowError):
        return "out of range"
    return str(exc) if type(exc) is ValueError else type(exc).__name__


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    if not -(2**63) <= value < 2**63:
        raise ValueError("beyond signed 64 bits")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    number = float(value)  # OverflowError for an int past the largest float
    if not math.isfinite(number):  # MySQL refuses NaN and infinities; SQLite stores NaN as NULL
        raise ValueError("not a finite number")
    return number


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    if len(value) > MAX_LENGTH:
        raise ValueError(f"over {MAX_LENGTH} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not valid UTF-8 (a lone surrogate)") from None
    return value


def _bytes(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(value)
    if len(value) > MAX_LENGTH:
        raise ValueError(f"over {MAX_LENGTH} bytes")
    return bytes(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _datetime(value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(value)
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:  # near year 1 or 9999, UTC falls outside what datetime holds
            raise ValueError("out of range once made UTC") from None
    return value


def _uuid(value: Any) -> bytes:
    if isinstance(value, str):
        value = uuid.UUID(value)
    if not isinstance(value, uuid.UUID):
        raise TypeError(value)
    return value.bytes


_NORMALIZERS = {
    "int": _int,
    "float": _float,
    "str": _str,
    "bytes": _bytes,
    "bool": _bool,
    "datetime": _datetime,
    "uuid": _uuid,
}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return any(_equal(x, b) for x in a)
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # True == 1 in Python, but not in a where clause
    return bool(a == b)


def _check_fields(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    if not fields:
        raise ConfigurationError("an index needs at least one field")
    for field, kind in fields.items():
        check_name(field, "field name")
        if field in RESERVED:
            raise InvalidName(f"{field!r} is reserved in index tables")
        if kind not in FIELD_TYPES:
            raise ConfigurationError(
                f"field {field!r}: unknown type {kind!r}; use one of {FIELD_TYPES}"
            )
    return list(fields.items())


def _check_defaults(
    name: str, fields: Mapping[str, str], defaults: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """The defaults, each of a field of the index and of a value its type holds (or a list of
    them), refused with ConfigurationError otherwise: they are stored, as JSON."""
    if not isinstance(defaults, Mapping):
        raise ConfigurationError(
            f"index {name!r}: defaults must map fields to values, not a {type(defaults).__name__}"
        )
    for field, value in defaults.items():
        if field not in fields:
            raise ConfigurationError(f"index {name!r}: default of {field!r}, not a field of it")
        try:
            for element in value if isinstance(value, list) else [value]:
                normalize(fields[field], element, field)
        except WrongType as exc:
            raise ConfigurationError(f"index {name!r}: default {exc}") from exc
    return list(defaults.items())


def _check_descending(
    name: str, fields: Mapping[str, str], descending: Collection[str]
) -> tuple[str, ...]:
    """The descending fields in key order; a str (which iterates as letters) or a name that is
    not a field is refused."""
    if isinstance(descending, (str, bytes)) or not isinstance(descending, Collection):
        raise ConfigurationError(
            f"index {name!r}: descending must list field names, like ['published'], "
            f"not a {type(descending).__name__}"
        )
    for field in descending:
        if field not in fields:
            raise ConfigurationError(f"index {name!r}: descending {field!r}, not a field of it")
    return tuple(f for f in fields if f in descending)


def _to_json(kind: str, value: Any) -> Any:
    """A default as JSON holds it, by its field's type (datetimes, uuids and bytes as str)."""
    if isinstance(value, list):
        return [_to_json(kind, v) for v in value]
    if value is None or kind not in ("datetime", "uuid", "bytes"):
        return value
    if kind == "bytes":
        return base64.b64encode(value).decode()
    return value.isoformat() if kind == "datetime" else str(value)


def _from_json(kind: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(kind, v) for v in value]
    if value is None or kind not in ("datetime", "uuid", "bytes"):
        return value
    if kind == "bytes":
        return base64.b64decode(value)
    return dt.datetime.fromisoformat(value) if kind == "datetime" else uuid.UUID(value)


def _check_where(where: Mapping[str, Any]) -> list[tuple[str, Any]]:
    for field, value in where.items():
        check_name(field, "field name")
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise ConfigurationError(f"where {field!r}: only str, int, float, bool or None values")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigurationError(f"where {field!r}: NaN and infinities match nothing")
    return list(where.items())
