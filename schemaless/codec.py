"""The blob envelope of an entity body: a two-byte header, then the serialized body.

Every body stored in ``entities.body`` starts with a format version byte and a flags byte, so
that a blob says how to read itself and a later release can change the layout without touching
rows already written::

    byte 0   format version, currently 1; a reader refuses any version it does not know
    byte 1   flags: bits 0-1 name the serializer (0 msgpack, 1 pickle), bit 2 says the rest is
             zlib-compressed, bits 3-7 are reserved and must be zero

msgpack is the default because it is compact, fast and safe to read from any source. The types
it lacks (datetime, date, time, timedelta, Decimal, UUID) travel as msgpack extension types
through a ``default`` hook on the way in and an ``ext_hook`` on the way out, so the walk over
the body stays in msgpack's C code. pickle is an opt-in escape hatch for trusted data only:
reading a pickle runs code, so a codec built without ``allow_pickle=True`` refuses pickled
blobs without ever calling pickle. Bodies whose serialized form passes ``compress_threshold``
bytes are zlib-compressed, and kept so only when that actually saves space.

A body nests at most ``MAX_DEPTH`` (1,024) levels of dicts and lists: msgpack checks that in C
while packing, at no cost to the write path, and a deeper body raises EncodeError before any SQL.
Whatever ``encode`` accepts, ``decode`` reads back at any depth up to that, and ``Entity.body``
copies it without recursion. (pickle refuses bodies nested deeper than Python's recursion limit
lets it walk, a few hundred levels; that too is an EncodeError.)

What comes back is a plain dict of lists: tuples become lists (except as keys of nested dicts,
where a list cannot be, so they come back as tuples). A datetime keeps its microseconds and its
UTC offset, and one whose tzinfo is a ``zoneinfo.ZoneInfo`` comes back in the same zone.
"""

from __future__ import annotations

import pickle
import uuid
import zlib
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgpack

from schemaless.errors import ConfigurationError, DecodeError, EncodeError

__all__ = ["Codec"]

VERSION = 1
MSGPACK, PICKLE = 0, 1
_SERIALIZERS = {"msgpack": MSGPACK, "pickle": PICKLE}
_SERIALIZER_MASK, ZLIB = 0b011, 0b100
# Pinned rather than HIGHEST_PROTOCOL, so that an older Python can still read what a newer wrote.
_PICKLE_PROTOCOL = 5

# What msgpack, our default hook and pickle raise for a value they cannot serialize.
_PICKLING_ERRORS = (AttributeError, RecursionError, pickle.PicklingError)
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, *_PICKLING_ERRORS)
_VALID_FLAGS = frozenset(kind | packed for kind in (MSGPACK, PICKLE) for packed in (0, ZLIB))
_HEADERS = {flags: bytes((VERSION, flags)) for flags in _VALID_FLAGS}
_PLAIN_MSGPACK = _HEADERS[MSGPACK]
_UNPACK_OPTIONS: dict[str, Any] = {"raw": False, "use_list": True, "strict_map_key": False}

_DATETIME, _DATE, _DECIMAL, _UUID, _TIME, _TIMEDELTA = 1, 2, 3, 4, 5, 6
MAX_DEPTH = 1024  # msgpack's own nesting limit (its packer's recurse limit); see above


def _default(obj: Any) -> msgpack.ExtType:
    """Turn a value msgpack cannot pack by itself into an extension type, or refuse it."""
    if isinstance(obj, datetime):
        return msgpack.ExtType(_DATETIME, _datetime_text(obj).encode())
    if isinstance(obj, date):
        return msgpack.ExtType(_DATE, obj.isoformat().encode())
    if isinstance(obj, Decimal):
        return msgpack.ExtType(_DECIMAL, str(obj).encode())
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(_UUID, obj.bytes)
    if isinstance(obj, time):
        return msgpack.ExtType(_TIME, obj.isoformat().encode())
    if isinstance(obj, timedelta):  # whole microseconds, as timedelta itself counts them
        return msgpack.ExtType(_TIMEDELTA, str(obj // timedelta(microseconds=1)).encode())
    if isinstance(obj, int):
        raise TypeError("cannot encode int out of the 64-bit range [-2**63, 2**64 - 1]")
    raise TypeError(f"cannot encode a value of type {type(obj).__qualname__}")


def _datetime_text(dt: datetime) -> str:
    # RFC 9557 style: the offset pins the instant, the bracketed key restores the zone.
    zone = dt.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        return f"{dt.isoformat()}[{zone.key}]"
    return dt.isoformat()


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _DATETIME:
        return _parse_datetime(data.decode())
    if code == _DATE:
        return date.fromisoformat(data.decode())
    if code == _DECIMAL:
        return Decimal(data.decode())
    if code == _UUID:
        return uuid.UUID(bytes=data)
    if code == _TIME:
        return time.fromisoformat(data.decode())
    if code == _TIMEDELTA:
        return timedelta(microseconds=int(data))
    raise DecodeError(f"unknown msgpack extension type {code}")


def _parse_datetime(text: str) -> datetime:
    iso, _, key = text.partition("[")
    parsed = datetime.fromisoformat(iso)
    if not key:
        return parsed
    try:
        zone = ZoneInfo(key.rstrip("]"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return parsed  # the zone is unknown here: keep the instant and its offset
    for fold in (0, 1):  # the stored offset tells which of a repeated hour it was
        local = parsed.replace(tzinfo=zone, fold=fold)
        if local.utcoffset() == parsed.utcoffset():
            return local
    return parsed.astimezone(zone)  # the zone's rules changed since: keep the instant


def _hashable_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_hashable(key): value for key, value in pairs}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(item) for item in key) if isinstance(key, list) else key


def _pack(body: Any) -> bytes:
    return msgpack.packb(body, default=_default, use_bin_type=True)


def _unpack(data: memoryview) -> Any:
    try:
        try:
            # The options spelled out rather than **_UNPACK_OPTIONS: this runs once per entity read.
            return msgpack.unpackb(
                data, ext_hook=_ext_hook, raw=False, use_list=True, strict_map_key=False
            )
        except TypeError:
            # A tuple key of a nested dict came back as an unhashable list: the slow path fixes it.
            hooks = {"ext_hook": _ext_hook, "object_pairs_hook": _hashable_pairs}
            return msgpack.unpackb(data, **hooks, **_UNPACK_OPTIONS)
    except (ValueError, TypeError, ArithmeticError, msgpack.UnpackException) as exc:
        raise DecodeError(f"the blob is not valid msgpack ({type(exc).__name__}: {exc})") from exc


def _pickle(body: Any) -> bytes:
    return pickle.dumps(body, protocol=_PICKLE_PROTOCOL)


class Codec:
    """Encodes entity bodies to blobs and back; one instance is safe to share between threads.

    >>> codec = Codec(compress_threshold=1024)
    >>> codec.decode(codec.encode({"user_id": 7, "tags": ("a", "b")}))
    {'user_id': 7, 'tags': ['a', 'b']}
    """

    def __init__(
        self,
        *,
        serializer: str = "msgpack",
        allow_pickle: bool = False,
        compress_threshold: int = 4096,
        compress_level: int = 6,
    ) -> None:
        if not isinstance(serializer, str) or serializer not in _SERIALIZERS:
            raise ConfigurationError(f"unknown serializer {serializer!r}; use msgpack or pickle")
        if not isinstance(allow_pickle, bool):  # allow_pickle="no" must not allow it
            raise ConfigurationError(f"allow_pickle must be True or False, not {allow_pickle!r}")
        if serializer == "pickle" and not allow_pickle:
            raise ConfigurationError("serializer='pickle' needs allow_pickle=True (trusted data)")
        if not _is_int(compress_threshold) or compress_threshold < 0:
            raise ConfigurationError("compress_threshold must be 0 or more bytes")
        if not _is_int(compress_level) or not -1 <= compress_level <= 9:
            raise ConfigurationError("compress_level must be between -1 and 9")
        self.serializer = serializer
        self.allow_pickle = allow_pickle
        self.compress_threshold = compress_threshold
        self.compress_level = compress_level
        self._flags = _SERIALIZERS[serializer]
        self._dumps = _pickle if serializer == "pickle" else _pack

    def encode(self, body: Mapping[str, Any]) -> bytes:
        """Return the blob of ``body``, a mapping with str keys, or raise EncodeError."""
        body = _checked(body)
        try:
            data = self._dumps(body)
        except _ENCODE_ERRORS as exc:
            raise EncodeError(self._explain(body, exc)) from exc
        flags = self._flags
        if len(data) > self.compress_threshold:
            packed = zlib.compress(data, self.compress_level)
            if len(packed) < len(data):
                data, flags = packed, flags | ZLIB
        return _HEADERS[flags] + data

    def decode(self, blob: bytes) -> dict[str, Any]:
        """Return the body stored in ``blob``, or raise DecodeError if it cannot be read safely."""
        # Most blobs are bytes of plain msgpack: a read of every entity fetched skips the rest.
        if type(blob) is bytes and len(blob) > 2 and blob[:2] == _PLAIN_MSGPACK:
            body = _unpack(memoryview(blob)[2:])
        else:
            body = self._read(blob)
        if type(body) is not dict:
            raise DecodeError(f"the blob holds a {type(body).__qualname__}, not a dict")
        return body

    def _read(self, blob: bytes) -> Any:
        view, flags = _header(blob)
        serializer = flags & _SERIALIZER_MASK
        if serializer == PICKLE and not self.allow_pickle:
            raise DecodeError("the blob holds a pickle, which this codec does not allow")
        if flags & ZLIB:
            view = _decompress(view)
        return _unpickle(view) if serializer == PICKLE else _unpack(view)

    def _explain(self, body: dict[str, Any], exc: Exception) -> str:
        """Name the top-level key whose value fails, without ever showing the body."""
        if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
            limit = f" ({MAX_DEPTH} levels)" if self.serializer == "msgpack" else ""
            return f"the body nests dicts and lists deeper than {self.serializer} can store{limit}"
        for key, value in body.items():
            try:
                self._dumps(value)
            except Exception as inner:  # only to find the key; the caller raises from exc
                return f"{inner} (under key {key[:64]!r})"
        return str(exc)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(body: Mapping[str, Any]) -> dict[str, Any]:
    if type(body) is not dict:
        if not isinstance(body, Mapping):
            raise EncodeError(f"a body must be a dict, not {type(body).__qualname__}")
        body = dict(body)
    for key in body:
        if not isinstance(key, str):
            raise EncodeError(f"a body's keys must be str, not {type(key).__qualname__}")
    return body


def _header(blob: bytes) -> tuple[memoryview, int]:
    try:
        view = memoryview(blob)
    except TypeError as exc:
        raise DecodeError(f"a blob must be bytes, not {type(blob).__qualname__}") from exc
    if len(view) < 3:
        raise DecodeError(f"a blob of {len(view)} bytes is too short")
    version, flags = view[0], view[1]
    if version != VERSION:
        raise DecodeError(f"unknown blob format version {version}")
    if flags not in _VALID_FLAGS:
        raise DecodeError(f"unknown blob flags {flags:#04x}")
    return view[2:], flags


def _decompress(view: memoryview) -> memoryview:
    try:
        return memoryview(zlib.decompress(view))
    except zlib.error as exc:
        raise DecodeError(f"the blob's zlib stream is corrupt: {exc}") from exc


def _unpickle(view: memoryview) -> Any:
    try:
        return pickle.loads(view)
    except Exception as exc:  # unpickling can fail with almost any exception
        raise DecodeError(f"the blob is not a valid pickle: {exc}") from exc
