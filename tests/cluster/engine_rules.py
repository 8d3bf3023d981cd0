"""The rules of distributed MySQL engines (DESIGN section 6), checked on what a server ran.

Vitess, TiDB and Galera each refuse or break on a few things a single MySQL server allows:
advisory locks (``GET_LOCK``), ``LOCK TABLES``, triggers, tables without a primary key, and
statements carrying more than 1000 rows. :class:`GeneralLog` records every statement a server
runs (its general log, in the ``mysql.general_log`` table), and :func:`violations` names the
statements that break a rule; :func:`tables_without_primary_key` asks information_schema.

    with GeneralLog(server_url) as log:
        ...  # the workload, in this process and in subprocesses alike
    assert violations(log.statements) == []
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

from schemaless.testing import mysql_connection

MAX_ROWS = 1000

# A quoted literal, written as an unrolled loop so that a 1 MB body is matched in one pass.
_LITERAL = re.compile(
    r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'|\"[^\"\\]*(?:(?:\\.|\"\")[^\"\\]*)*\"", re.S
)
_FORBIDDEN = re.compile(
    r"\bGET_LOCK\s*\(|\bRELEASE_LOCK\s*\(|\bLOCK\s+TABLES?\b"
    r"|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\b",
    re.I,
)
_VALUES = re.compile(r"^\s*(?:INSERT|REPLACE)\b.*?\bVALUES?\s*\(", re.I | re.S)
_IN = re.compile(r"\bIN\s*\(", re.I)


class GeneralLog:
    """Every statement the server at ``url`` runs while inside, from any client.

    The general log is global: it records the statements of every session, so run it on a
    server of the test's own.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.statements: list[str] = []

    def __enter__(self) -> GeneralLog:
        self._run(
            "SET GLOBAL general_log = 0",
            "SET GLOBAL log_output = 'TABLE'",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL general_log = 1",
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._run("SET GLOBAL general_log = 0")
        rows = self._run(
            "SELECT CAST(argument AS BINARY) FROM mysql.general_log "
            "WHERE command_type IN ('Query', 'Execute')"
        )
        self.statements = [bytes(row[0]).decode("utf-8", "replace") for row in rows]

    def _run(self, *statements: str) -> list[Any]:
        connection = mysql_connection(self.url)
        try:
            cursor = connection.cursor()
            for sql in statements:
                cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            connection.close()


def violations(statements: list[str]) -> list[str]:
    """A line for every statement that breaks a rule, naming the rule and the statement."""
    found = []
    for sql in statements:
        bare = _LITERAL.sub("?", sql)  # bodies and values cannot look like SQL any more
        for problem in _problems(bare):
            found.append(f"{problem}: {_short(bare)}")
    return found


def _problems(bare: str) -> list[str]:
    problems = []
    forbidden = _FORBIDDEN.search(bare)
    if forbidden:
        problems.append(f"forbidden {forbidden.group(0).strip()!r}")
    rows = inserted_rows(bare)
    if rows > MAX_ROWS:
        problems.append(f"an INSERT of {rows} rows")
    for size in in_lists(bare):
        if size > MAX_ROWS:
            problems.append(f"an IN list of {size} values")
    return problems


def inserted_rows(bare: str) -> int:
    """The tuples of a multi-row ``INSERT ... VALUES (...), (...)``; 0 for anything else."""
    match = _VALUES.match(bare)
    if match is None:
        return 0
    tuples, depth = 0, 0
    for char in bare[match.end() - 1 :]:
        if char == "(":
            tuples += depth == 0
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char not in ", \t\r\n":
            break  # ON DUPLICATE KEY UPDATE ... and what follows are not rows
    return tuples


def in_lists(bare: str) -> list[int]:
    """The number of values of each ``IN (...)`` list of values (subqueries left out)."""
    sizes = []
    for match in _IN.finditer(bare):
        depth, commas, start = 1, 0, match.end()
        if bare[start:].lstrip()[:6].upper() == "SELECT":
            continue
        for char in bare[start:]:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            elif char == "," and depth == 1:
                commas += 1
        sizes.append(commas + 1)
    return sizes


def tables_without_primary_key(url: str) -> list[str]:
    """The base tables of the database ``url`` names that have no primary key."""
    connection = mysql_connection(url)
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT t.table_name FROM information_schema.tables t "
            "LEFT JOIN information_schema.table_constraints c "
            "ON c.table_schema = t.table_schema AND c.table_name = t.table_name "
            "AND c.constraint_type = 'PRIMARY KEY' "
            "WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' "
            "AND c.constraint_name IS NULL ORDER BY t.table_name"
        )
        return [str(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()


def tables(url: str) -> list[str]:
    """Every base table of the database ``url`` names."""
    connection = mysql_connection(url)
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        )
        return sorted(str(row[0]) for row in cursor.fetchall())
    finally:
        connection.close()


def _short(sql: str, limit: int = 160) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + " ..."
