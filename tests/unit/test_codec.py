"""The blob envelope: what round-trips, what is refused, and what a bad blob raises."""

from __future__ import annotations

import math
import os
import uuid
from collections import OrderedDict
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest

from schemaless.codec import Codec
from schemaless.errors import ConfigurationError, DecodeError, EncodeError

_UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> str:
    _UNPICKLED.append(tag)
    return tag


class _Trap:
    """Unpickling this runs _record_unpickling: the visible side effect of a hostile pickle."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _record_unpickling, ("trap sprung",)


class _MinusThree(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=-3)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


@pytest.fixture
def codec() -> Codec:
    return Codec()


@pytest.fixture
def trap_blob() -> bytes:
    _UNPICKLED.clear()
    return Codec(serializer="pickle", allow_pickle=True).encode({"x": _Trap()})


def roundtrip(value: Any, codec: Codec | None = None) -> Any:
    codec = codec or Codec()
    return codec.decode(codec.encode({"v": value}))["v"]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        1.5,
        -0.0,
        math.inf,
        -math.inf,
        "",
        "héllo ✓ 🐍",
        b"",
        b"\x00\xff\x80",
        [],
        [1, "a", None, [2.5, b"x"]],
        {},
        {"a": {"b": [1, {"c": None}]}},
        date(2024, 2, 29),
        datetime(2024, 2, 29, 13, 45, 7, 123456),
        Decimal("1.10"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        time(13, 45, 7, 123456),
        time(23, 59, tzinfo=timezone(timedelta(hours=-5))),
        timedelta(days=-3, seconds=5, microseconds=7),
        timedelta(days=999_999_999, seconds=86399, microseconds=999_999),
    ],
    ids=repr,
)
def test_value_round_trips_with_its_type(value: Any) -> None:
    decoded = roundtrip(value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_nan_round_trips() -> None:
    assert math.isnan(roundtrip(math.nan))


def test_empty_body_round_trips(codec: Codec) -> None:
    assert codec.decode(codec.encode({})) == {}


def test_nested_structure_round_trips(codec: Codec) -> None:
    body = {
        "user": {"id": 7, "tags": ["a", "b"], "seen": [date(2024, 1, 1), Decimal("0.5")]},
        "events": [{"at": datetime(2024, 1, 1, 12, tzinfo=timezone.utc), "id": uuid.uuid4()}],
    }
    assert codec.decode(codec.encode(body)) == body


def test_tuple_comes_back_as_list() -> None:
    assert roundtrip((1, ("a", 2))) == [1, ["a", 2]]


def test_nested_dict_with_int_keys_round_trips() -> None:
    assert roundtrip({1: "one", 2: "two"}) == {1: "one", 2: "two"}


def test_tuple_key_of_nested_dict_comes_back_as_tuple() -> None:
    assert roundtrip({(1, (2, 3)): "x", "k": [4]}) == {(1, (2, 3)): "x", "k": [4]}


def test_bytearray_comes_back_as_bytes() -> None:
    assert roundtrip(bytearray(b"abc")) == b"abc"


def test_decoded_body_is_a_plain_dict_even_from_another_mapping(codec: Codec) -> None:
    for body in (MappingProxyType({"a": 1}), OrderedDict(a=1)):
        decoded = codec.decode(codec.encode(body))
        assert type(decoded) is dict
        assert decoded == {"a": 1}


def test_decode_accepts_bytearray_and_memoryview(codec: Codec) -> None:
    blob = codec.encode({"a": 1})
    assert codec.decode(bytearray(blob)) == {"a": 1}
    assert codec.decode(memoryview(blob)) == {"a": 1}


@pytest.mark.parametrize("text", ["1.10", "-0.000", "1E+3", "12345678901234567890.123456789"])
def test_decimal_keeps_its_exact_digits(text: str) -> None:
    assert str(roundtrip(Decimal(text))) == text


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN"])
def test_decimal_special_values_round_trip(text: str) -> None:
    assert str(roundtrip(Decimal(text))) == text


def test_date_comes_back_as_date_not_datetime() -> None:
    assert type(roundtrip(date(2024, 5, 1))) is date


def test_datetime_comes_back_as_datetime_not_date() -> None:
    assert type(roundtrip(datetime(2024, 5, 1))) is datetime


def test_naive_datetime_stays_naive_with_its_microseconds() -> None:
    value = datetime(2024, 5, 1, 23, 59, 59, 999999)
    decoded = roundtrip(value)
    assert decoded.tzinfo is None
    assert decoded.microsecond == 999999
    assert decoded == value


def test_zoneinfo_datetime_comes_back_in_the_same_zone() -> None:
    value = datetime(2024, 7, 14, 9, 30, 0, 42, tzinfo=ZoneInfo("Europe/Paris"))
    decoded = roundtrip(value)
    assert isinstance(decoded.tzinfo, ZoneInfo)
    assert decoded.tzinfo.key == "Europe/Paris"
    assert decoded.utcoffset() == timedelta(hours=2)
    assert (decoded, decoded.replace(tzinfo=None)) == (value, value.replace(tzinfo=None))


@pytest.mark.parametrize("fold", [0, 1])
def test_zoneinfo_datetime_in_the_repeated_hour_keeps_its_offset(fold: int) -> None:
    value = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=fold)
    decoded = roundtrip(value)
    assert decoded.utcoffset() == value.utcoffset()
    assert decoded.fold == fold
    assert decoded.timestamp() == value.timestamp()


def test_zoneinfo_datetime_whose_zone_is_unknown_on_read_keeps_its_offset(codec: Codec) -> None:
    value = datetime(2024, 7, 14, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))
    # Same length, so the blob stays well formed; the reader simply lacks that zone.
    blob = codec.encode({"v": value}).replace(b"Europe/Paris", b"Mars/Olympus")
    decoded = codec.decode(blob)["v"]
    assert decoded.utcoffset() == timedelta(hours=2)
    assert decoded == value


@pytest.mark.parametrize(
    "zone",
    [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-9))],
    ids=str,
)
def test_fixed_offset_datetime_keeps_its_offset(zone: timezone) -> None:
    value = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=zone)
    decoded = roundtrip(value)
    assert decoded.tzinfo == zone
    assert decoded.replace(tzinfo=None) == value.replace(tzinfo=None)


def test_datetime_with_another_tzinfo_keeps_its_offset() -> None:
    value = datetime(2024, 1, 2, 3, 4, 5, tzinfo=_MinusThree())
    decoded = roundtrip(value)
    assert decoded.utcoffset() == timedelta(hours=-3)
    assert decoded == value


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**100], ids=repr)
def test_int_outside_msgpack_range_raises_encode_error(value: int) -> None:
    with pytest.raises(EncodeError, match="int"):
        Codec().encode({"n": value})


def test_repetitive_body_above_threshold_is_compressed(codec: Codec) -> None:
    body = {"text": "spam and eggs " * 1000}
    blob = codec.encode(body)
    assert len(blob) < len(msgpack.packb(body))
    assert codec.decode(blob) == body


def test_body_below_threshold_is_not_compressed(codec: Codec) -> None:
    body = {"text": "spam and eggs " * 10}
    assert codec.encode(body).endswith(msgpack.packb(body))


def test_incompressible_body_above_threshold_is_stored_raw(codec: Codec) -> None:
    body = {"noise": os.urandom(10_000)}
    blob = codec.encode(body)
    assert blob.endswith(msgpack.packb(body))
    assert codec.decode(blob) == body


def test_compress_threshold_is_configurable() -> None:
    body = {"text": "spam and eggs " * 10}
    assert not Codec(compress_threshold=64).encode(body).endswith(msgpack.packb(body))


@pytest.mark.parametrize(
    "value, type_name",
    [({1, 2}, "set"), (object(), "object"), (frozenset(), "frozenset"), (1j, "complex")],
    ids=["set", "object", "frozenset", "complex"],
)
def test_unsupported_value_raises_encode_error_naming_type_and_key(
    value: Any, type_name: str
) -> None:
    with pytest.raises(EncodeError, match=rf"\b{type_name}\b.*'bad'"):
        Codec().encode({"good": 1, "bad": value})


def test_unsupported_value_deep_inside_names_its_top_level_key() -> None:
    with pytest.raises(EncodeError, match=r"set.*'outer'"):
        Codec().encode({"fine": [1], "outer": {"inner": [1, {"deep": {3}}]}})


def test_encode_error_message_never_shows_the_body() -> None:
    with pytest.raises(EncodeError) as info:
        Codec().encode({"secret": "hunter2", "bad": {1}})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("key", [1, b"k", None, ("a",)], ids=repr)
def test_non_str_top_level_key_raises_encode_error(key: Any) -> None:
    with pytest.raises(EncodeError, match="keys must be str"):
        Codec().encode({key: 1})


@pytest.mark.parametrize("body", [[("a", 1)], None, "text", 42], ids=repr)
def test_body_that_is_not_a_dict_raises_encode_error(body: Any) -> None:
    with pytest.raises(EncodeError, match="must be a dict"):
        Codec().encode(body)


def test_pickle_serializer_without_allow_pickle_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="allow_pickle"):
        Codec(serializer="pickle")


@pytest.mark.parametrize(
    "options",
    [{"serializer": "json"}, {"compress_threshold": -1}, {"compress_level": 10}],
    ids=repr,
)
def test_unusable_option_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Codec(**options)


def test_pickled_blob_is_refused_without_allow_pickle(trap_blob: bytes) -> None:
    with pytest.raises(DecodeError, match="pickle"):
        Codec().decode(trap_blob)
    assert _UNPICKLED == []


def test_pickled_blob_is_read_when_allow_pickle_is_set(trap_blob: bytes) -> None:
    # The same trap does fire when pickle is allowed, so the refusal test above is meaningful.
    assert Codec(allow_pickle=True).decode(trap_blob) == {"x": "trap sprung"}
    assert _UNPICKLED == ["trap sprung"]


def test_pickle_round_trips_python_objects_exactly() -> None:
    codec = Codec(serializer="pickle", allow_pickle=True)
    body = {"tags": {"a", "b"}, "pair": (1, 2), "n": 2**100, "at": datetime(2024, 1, 1)}
    assert codec.decode(codec.encode(body)) == body


def test_unpicklable_value_raises_encode_error_naming_its_key() -> None:
    codec = Codec(serializer="pickle", allow_pickle=True)
    with pytest.raises(EncodeError, match="'callback'"):
        codec.encode({"ok": 1, "callback": lambda: None})


def test_msgpack_codec_still_reads_msgpack_blobs_when_pickle_is_allowed(codec: Codec) -> None:
    assert Codec(allow_pickle=True).decode(codec.encode({"a": [1]})) == {"a": [1]}


def test_pickle_codec_reads_msgpack_blobs(codec: Codec) -> None:
    pickling = Codec(serializer="pickle", allow_pickle=True)
    assert pickling.decode(codec.encode({"a": [1]})) == {"a": [1]}


def _with_header(payload: bytes, flags: int = 0) -> bytes:
    return bytes((1, flags)) + payload


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01",
        b"\x01\x00",
        b"garbage that is no blob at all",
        _with_header(b"\xc1"),
        _with_header(b"\x81\xa1a\xc1"),
        _with_header(msgpack.packb({"a": 1}) + b"\x00"),
        _with_header(b"not zlib at all", flags=0b100),
        _with_header(b"\x81\xa1s\xa2\xff\xfe"),
        _with_header(b"\x81\xa1v" + msgpack.packb(msgpack.ExtType(99, b"?"))),
        _with_header(b"\x81\xa1v" + msgpack.packb(msgpack.ExtType(2, b"not a date"))),
        _with_header(b"\x81\xa1v" + msgpack.packb(msgpack.ExtType(4, b"short"))),
    ],
    ids=[
        "empty",
        "one-byte",
        "header-only",
        "garbage",
        "reserved-msgpack-byte",
        "bad-value",
        "extra-data",
        "bad-zlib",
        "invalid-utf8-str",
        "unknown-ext-type",
        "bad-date",
        "bad-uuid",
    ],
)
def test_unreadable_blob_raises_decode_error(codec: Codec, blob: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(blob)


@pytest.mark.parametrize("size", [100, 10_000], ids=["raw", "compressed"])
def test_truncated_blob_raises_decode_error(codec: Codec, size: int) -> None:
    blob = codec.encode({"text": "spam and eggs " * size})
    with pytest.raises(DecodeError):
        codec.decode(blob[:-5])


def test_unknown_format_version_raises_decode_error(codec: Codec) -> None:
    blob = codec.encode({"a": 1})
    with pytest.raises(DecodeError, match="version 2"):
        codec.decode(b"\x02" + blob[1:])


@pytest.mark.parametrize("flags", [0b010, 0b011, 0b1000, 0xFF], ids=bin)
def test_unknown_flags_raise_decode_error(codec: Codec, flags: int) -> None:
    blob = codec.encode({"a": 1})
    with pytest.raises(DecodeError, match="flags"):
        codec.decode(blob[:1] + bytes((flags,)) + blob[2:])


def test_blob_holding_a_list_instead_of_a_dict_raises_decode_error(codec: Codec) -> None:
    with pytest.raises(DecodeError, match="list"):
        codec.decode(_with_header(msgpack.packb([1, 2])))


@pytest.mark.parametrize("blob", [None, "text", 42], ids=repr)
def test_blob_that_is_not_bytes_raises_decode_error(codec: Codec, blob: Any) -> None:
    with pytest.raises(DecodeError, match="must be bytes"):
        codec.decode(blob)


def test_corrupt_pickle_raises_decode_error_when_pickle_is_allowed() -> None:
    with pytest.raises(DecodeError, match="pickle"):
        Codec(allow_pickle=True).decode(_with_header(b"\x80\x05garbage", flags=0b001))
