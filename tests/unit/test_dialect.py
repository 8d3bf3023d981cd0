"""The datetime conversions our MySQL engines give mysqlclient agree with mysqlclient's own."""

from __future__ import annotations

import datetime as dt

import pytest
from MySQLdb.constants import FIELD_TYPE
from MySQLdb.times import DateTime2literal, DateTime_or_None

from schemaless.dialect import _mysql_conversions

CONVERSIONS = _mysql_conversions()
UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 30, 23, 5, 1),
        dt.datetime(2026, 11, 30, 23, 5, 1, 60),
        dt.datetime(999, 1, 2, 3, 4, 5, 123456),
        dt.datetime(2026, 11, 30, 23, 5, 1, 7, tzinfo=UTC_PLUS_2),
    ],
)
def test_datetimes_are_written_as_mysqlclient_writes_them(value: dt.datetime) -> None:
    ours = CONVERSIONS[dt.datetime](value, CONVERSIONS)
    theirs = DateTime2literal(value, CONVERSIONS)
    assert ours == (theirs if isinstance(theirs, bytes) else theirs.encode())


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30 23:05:01",
        "2026-11-30 23:05:01.000060",
        "2026-11-30 23:05:01.5",
        "0999-01-02 03:04:05.123456",
        "0000-00-00 00:00:00",
        "2026-11-30",
    ],
)
@pytest.mark.parametrize("field_type", [FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP])
def test_datetimes_are_read_as_mysqlclient_reads_them(text: str, field_type: int) -> None:
    assert CONVERSIONS[field_type](text) == DateTime_or_None(text)
