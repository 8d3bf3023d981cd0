"""inline.inserting: a multi-row INSERT with its values written in, or None to escape instead."""

from __future__ import annotations

import datetime as dt

from schemaless import inline

STATEMENT = "INSERT INTO t (a, b, c, d) VALUES (%s, %s, %s, %s)"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 6)


def test_constants_are_written_once_and_bytes_in_hex() -> None:
    kind = "entry{x}"
    rows = [(b"\x00'\\", kind, 1, NOW), (b"", kind, 1, NOW)]
    assert inline.inserting(STATEMENT, rows) == (
        "INSERT INTO t (a, b, c, d) VALUES "
        "(X'00275c',_utf8mb4 X'656e7472797b787d',1,'2026-01-02 03:04:05.000006'),"
        "(X'',_utf8mb4 X'656e7472797b787d',1,'2026-01-02 03:04:05.000006')"
    )


def test_what_it_cannot_write_is_left_to_the_driver() -> None:
    aware = NOW.replace(tzinfo=dt.timezone.utc)
    assert inline.inserting(STATEMENT, [(b"a", "k", 1, aware)]) is None
    assert inline.inserting(STATEMENT, [(b"a", "k", 1.5, NOW)]) is None
    assert inline.inserting(STATEMENT, [(b"a", "k", 1, NOW), (b"b", "j", 1, NOW)]) is None


def test_a_batch_past_the_limit_is_left_to_the_driver() -> None:
    big = [(bytes([n]) * (inline.LIMIT // 20), "k", 1, NOW) for n in range(10)]
    assert inline.inserting(STATEMENT, big) is None
    assert inline.inserting(STATEMENT, big[:2]) is not None
