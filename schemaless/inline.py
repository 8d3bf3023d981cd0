"""Multi-row INSERTs on MySQL with their values written into the statement.

mysqlclient's ``executemany`` escapes every value of every row through its Python encoders: for
a thousand entities and their change rows, nine thousand calls, more time than the server takes
to insert them (``bench/django_orm.py``'s ``bulk_create``). The rows the store inserts are
mostly constants (one kind, one version, one timestamp in a batch) and bytes (ids, bodies), so
:func:`inserting` writes each constant once and bytes as hexadecimal literals (``X'..'``,
read alike whatever the connection's character set or SQL mode), one ``str.format`` a row.

Hex doubles the bytes on the wire, so a batch past :data:`LIMIT` characters is not rendered
(the caller escapes it as before): a statement stays well under any ``max_allowed_packet``.

    >>> inserting("INSERT INTO t (a, b) VALUES (%s, %s)", [(b"\\x01", 1), (b"\\x02", 1)])
    "INSERT INTO t (a, b) VALUES (X'01',1),(X'02',1)"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

LIMIT = 1_000_000  # characters of values in one rendered statement, as mysqlclient's own


def inserting(statement: str, rows: Sequence[Sequence[Any]]) -> str | None:
    """``statement`` (an INSERT ... VALUES with one row of ``%s``) for all ``rows``; None when
    they would take more than LIMIT characters or hold a value of a type not rendered here."""
    first = rows[0]
    parts, varying = [], []
    size = 0
    for column, value in enumerate(first):
        if all(row[column] is value for row in rows):
            literal = _literal(value)
            if literal is None:
                return None
            parts.append(literal.replace("{", "{{").replace("}", "}}"))
            size += len(literal) * len(rows)
        elif all(isinstance(row[column], bytes) for row in rows):
            parts.append("X'{}'")
            varying.append(column)
            size += sum(2 * len(row[column]) + 3 for row in rows)
        else:
            return None
        if size > LIMIT:
            return None
    fill = ("(" + ",".join(parts) + ")").format
    head = statement[: statement.rindex("VALUES") + len("VALUES")]
    values = [fill(*[row[c].hex() for c in varying]) for row in rows]
    return f"{head} {','.join(values)}"


def _literal(value: Any) -> str | None:
    """A constant as SQL: bytes and str in hex (str with its character set), numbers as
    written, a naive datetime (UTC, as the store writes them) quoted; None for anything else."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return f"_utf8mb4 X'{value.encode().hex()}'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return f"'{value.isoformat(sep=' ', timespec='microseconds')}'"
    return None
