"""Cleaner: verify that every index says what the entities say, and repair what it does not.

The index tables are derived data, so they can always be recomputed; the cleaner compares them
with that recomputation (:meth:`~schemaless.index_writer.IndexWriter.rows_for`) and, when asked,
rewrites the broken entities' rows through ``apply_in``, the same function the indexer uses.
Per index it counts, in rows:

- **missing**: a row the entity should have and the index lacks;
- **stale**: a row the entity has but out of date: its version is not the entity's, or its
  field values (or shard) differ from what the entity says now; it is paired one for one with
  a missing row of the same entity, so a hand-altered row is one stale row, not a missing and
  an extra one;
- **extra**: a row beyond what the entity should have (a second copy of one of its rows
  included: an index never holds a row twice), or of an entity that does not exist, is
  deleted, is of another kind, or lives on the wrong shard.

An entity with rows waiting in ``entity_changes`` is *pending*: the indexer has not caught up,
so a difference there is counted apart and is not wrong. Entities are read ``FOR SHARE`` while
compared, so no write and no indexer (which locks them ``FOR UPDATE``) lands between reading an
entity and reading its rows; a repair locks them ``FOR UPDATE``, as every writer of index rows.

    >>> report = Cleaner(store).verify("entry_by_user", repair=True)
    >>> print(report.format())
    >>> Cleaner(store, rate=500).run()     # continuously, recently updated entities first
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schemaless.errors import DecodeError, ShardUnavailable
from schemaless.index import Index, WrongType
from schemaless.index_writer import Lock, State
from schemaless.registry import READY
from schemaless.store import Store
from schemaless.tables import entities, entity_changes

from .signals import on_stop

logger = logging.getLogger(__name__)

IDLE = 1.0  # seconds the continuous cleaner waits when there is nothing to visit

Key = tuple[int, tuple[Any, ...]]  # (shard, field values) of one index row


@dataclasses.dataclass
class Finding:
    """What was found in one index: rows missing, stale and extra, entities pending."""

    name: str
    state: str
    entities: int = 0
    missing: int = 0
    stale: int = 0
    extra: int = 0
    pending: int = 0
    repaired: int = 0
    undecodable: int = 0  # entities whose bodies cannot be read: set aside by the indexer

    @property
    def is_clean(self) -> bool:
        return not (self.missing or self.stale or self.extra or self.undecodable)

    def count(self, missing: int, stale: int, extra: int) -> None:
        self.missing += missing
        self.stale += stale
        self.extra += extra


@dataclasses.dataclass
class Report:
    """The findings of one verify, one per index; clean when no row is wrong."""

    findings: list[Finding]
    repaired: bool = False

    @property
    def is_clean(self) -> bool:
        return all(f.is_clean for f in self.findings)

    @property
    def undecodable(self) -> int:
        """Entities (counted once per index) whose bodies cannot be decoded: no repair helps."""
        return sum(f.undecodable for f in self.findings)

    def format(self) -> str:
        columns = ("entities", "missing", "stale", "extra", "pending", "repaired")
        lines = [f"{'index':<24} {'state':<9}" + "".join(f"{c:>10}" for c in columns)]
        for f in self.findings:
            counts = "".join(f"{getattr(f, c):>10}" for c in columns)
            lines.append(f"{f.name:<24} {f.state:<9}{counts}")
        wrong = sum(f.missing + f.stale + f.extra for f in self.findings)
        if not self.findings:
            lines.append("no index to verify")
        elif not wrong and not self.undecodable:
            lines.append("clean")
        elif wrong:
            lines.append(f"{wrong} wrong rows" + (", repaired" if self.repaired else ""))
        lines += [
            f"{f.name}: {f.undecodable} entities cannot be decoded (see `schemaless status`)"
            for f in self.findings
            if f.undecodable
        ]
        return "\n".join(lines)


class Cleaner:
    """Compares indexes with the entities, once (verify) or continuously (run)."""

    def __init__(
        self,
        store: Store,
        *,
        rate: float = 1000.0,
        batch_size: int = 500,
        install_signal_handlers: bool = True,
    ) -> None:
        self.store = store
        self.shards = store.shards
        self.rate = rate
        self.batch_size = batch_size
        self.install_signal_handlers = install_signal_handlers
        self.writer = store.index_writer
        self.findings: dict[str, Finding] = {}  # what run() found so far, per index
        self.visited = 0
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Finish the batch under way, then return from run()."""
        self._stopping.set()

    # -- verify --------------------------------------------------------------------------------

    def verify(self, name: str | None = None, *, repair: bool = False) -> Report:
        """Compare one index (or every ready one) with the entities; repair when asked."""
        registry = self.store.registry
        entries = [registry.get(name)] if name else registry.entries()
        findings = []
        for entry in entries:
            if name or entry.state == READY:
                findings.append(self._verify(entry.index, entry.state, repair))
        return Report(findings, repaired=repair)

    def _verify(self, index: Index, state: str, repair: bool) -> Finding:
        finding = Finding(index.name, state)
        of_kind = sa.select(entities.c.added_id, entities.c.id).where(entities.c.kind == index.kind)
        table = self.store.registry.table(index)
        indexed = sa.select(table.c.entity_id).distinct()
        for shard in range(len(self.shards)):
            for ids in self._keyset(shard, of_kind, entities.c.added_id, 0):
                self._check(shard, index, ids, finding, repair)
        for shard in range(len(self.shards)):
            for ids in self._keyset(shard, indexed, table.c.entity_id, b""):
                self._check_orphans(shard, index, ids, finding, repair)
        logger.info("verified %s: %s", index.name, finding)
        return finding

    def _keyset(self, shard: int, select: Any, key: Any, start: Any) -> Iterator[list[bytes]]:
        """The entity ids ``select`` finds (key first, id last), in batches by ``key``."""
        last = start
        while True:
            stmt = select.where(key > last).order_by(key).limit(self.batch_size)
            with self.shards[shard].read() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            last = rows[-1][0]
            yield [bytes(row[-1]) for row in rows]

    # -- comparing one batch -------------------------------------------------------------------

    def _check(
        self, shard: int, index: Index, ids: list[bytes], finding: Finding, repair: bool
    ) -> None:
        """Compare entities of the shard with their rows; rewrite the broken ones if asked."""
        broken = self._compare(shard, index, ids, finding)
        if broken and repair:
            with self.shards[shard].begin() as conn:
                self.writer.apply_in(conn, broken, shard=shard, indexes=[index])
            finding.repaired += len(broken)

    def _compare(self, shard: int, index: Index, ids: list[bytes], finding: Finding) -> list[bytes]:
        with self._locked(shard) as conn:
            states, unreadable = self._read(conn, ids)  # FOR SHARE: no write lands meanwhile
            ids = [e for e in ids if e not in unreadable]
            pending = _pending(conn, ids)
            targets = range(len(self.shards)) if index.shard_on else [shard]
            actual = self._rows(index, ids, targets, shard, conn)
        broken = []
        for entity_id in ids:
            state = states.get(entity_id)
            missing, stale, extra = _diff(
                self._expected(index, entity_id, state, shard),
                state.version if state else None,
                actual.get(entity_id, []),
            )
            if missing or stale or extra:
                if entity_id in pending:
                    finding.pending += 1
                    continue
                finding.count(missing, stale, extra)
                broken.append(entity_id)
        finding.entities += len(ids) + len(unreadable)
        finding.undecodable += len(unreadable)
        return broken

    def _read(
        self, conn: Connection, ids: list[bytes], lock: Lock = "share"
    ) -> tuple[dict[bytes, State], set[bytes]]:
        """The entities' states, locked as the writer locks them, and the ids of those whose
        bodies cannot be decoded: counted apart, as no one can say what their rows should be."""
        try:
            return self.writer.read(conn, ids, lock=lock), set()
        except DecodeError:
            pass  # rare: find which, one by one
        states: dict[bytes, State] = {}
        unreadable = set()
        for entity_id in ids:
            try:
                states.update(self.writer.read(conn, [entity_id], lock=lock))
            except DecodeError as exc:
                logger.debug("entity %s cannot be decoded: %s", uuid.UUID(bytes=entity_id), exc)
                unreadable.add(entity_id)
        return states, unreadable

    def _check_orphans(
        self, shard: int, index: Index, ids: list[bytes], finding: Finding, repair: bool
    ) -> None:
        """Count (and delete) rows on ``shard`` that no entity of the index's kind accounts for."""
        for home, group in self.shards.group_by_id(ids, key=lambda i: i).items():
            with self._locked(home) as conn:
                orphans = self._orphans(conn, home, shard, index, group)
                pending = _pending(conn, orphans)
                rows = self._rows(index, orphans, [shard], home, conn)
            wrong = [e for e in orphans if e not in pending]
            finding.pending += len(orphans) - len(wrong)
            finding.extra += sum(len(rows[e]) for e in wrong)
            if repair and wrong:
                self._delete_orphans(shard, home, index, wrong)
                finding.repaired += len(wrong)

    def _orphans(
        self,
        conn: Connection,
        home: int,
        shard: int,
        index: Index,
        ids: list[bytes],
        lock: Lock = "share",
    ) -> list[bytes]:
        """The ids whose rows on ``shard`` the per-entity comparison does not look at."""
        states, unreadable = self._read(conn, ids, lock)
        return [
            e
            for e in ids
            if e not in unreadable and not _accounted(index, states.get(e), home, shard)
        ]

    def _delete_orphans(self, shard: int, home: int, index: Index, ids: list[bytes]) -> None:
        table = self.store.registry.table(index)
        with self.shards[home].begin() as conn:
            ids = self._orphans(conn, home, shard, index, ids, "update")  # no put lands meanwhile
            other = self.shards[shard].begin() if shard != home else None
            with other or contextlib.nullcontext(conn) as on:  # commits before the lock goes
                on.execute(table.delete().where(table.c.entity_id.in_(ids)))

    def _expected(
        self, index: Index, entity_id: bytes, state: State | None, home: int
    ) -> list[Key]:
        try:
            rows = self.writer.rows_for(index, entity_id, state)
        except WrongType:
            return []  # left out of the index on purpose
        fields = list(index.fields)
        return [
            (self.writer.target(index, row, home), tuple(row[f] for f in fields)) for row in rows
        ]

    def _rows(
        self, index: Index, ids: list[bytes], shards: Any, home: int, conn: Connection
    ) -> dict[bytes, list[tuple[Key, int]]]:
        """The index rows of these entities on ``shards``, read through ``conn`` on ``home``."""
        table = self.store.registry.table(index)
        columns = [table.c[f] for f in index.fields]
        stmt = sa.select(*columns, table.c.entity_id, table.c.version)
        found: dict[bytes, list[tuple[Key, int]]] = collections.defaultdict(list)
        if not ids:
            return found
        for shard in shards:
            own = self.shards[shard].read() if shard != home else None
            with own or contextlib.nullcontext(conn) as on:
                for row in on.execute(stmt.where(table.c.entity_id.in_(ids))):
                    key = (shard, tuple(row[: len(columns)]))
                    found[bytes(row.entity_id)].append((key, row.version))
        return found

    @contextlib.contextmanager
    def _locked(self, shard: int) -> Iterator[Connection]:
        """A read transaction: a snapshot on SQLite, a holder of FOR SHARE locks on MySQL."""
        with self.shards[shard].read() as conn, conn.begin():
            yield conn

    # -- continuous ----------------------------------------------------------------------------

    def run(self) -> None:
        """Visit entities, most recently updated first, repairing what is wrong, until stopped."""
        marks: dict[int, tuple[Any, int] | None] = {}
        started = time.monotonic()
        with on_stop(self.stop, install=self.install_signal_handlers):
            while not self._stopping.is_set():
                visited = sum(self._safe_sweep(shard, marks) for shard in range(len(self.shards)))
                self.visited += visited
                ahead = self.visited / self.rate - (time.monotonic() - started)
                self._stopping.wait(max(ahead, 0.0) if visited else IDLE)

    def _safe_sweep(self, shard: int, marks: dict[int, tuple[Any, int] | None]) -> int:
        try:
            return self._sweep(shard, marks)
        except ShardUnavailable as exc:  # a lock conflict, a shard away: the next pass comes back
            logger.warning("cleaner batch on shard %d failed: %s", shard, exc)
            return 0
        except Exception:  # a bug: show it whole, and keep the daemon going
            logger.exception("cleaner batch on shard %d failed", shard)
            return 0

    def _sweep(self, shard: int, marks: dict[int, tuple[Any, int] | None]) -> int:
        """One batch of the shard's pass from the newest entity to the oldest, then again."""
        rows = self._recent(shard, marks.get(shard))
        marks[shard] = (rows[-1].updated, rows[-1].added_id) if rows else None
        for entry in self.store.registry.entries():
            ids = [bytes(row.id) for row in rows if row.kind == entry.index.kind]
            if ids and entry.state == READY:
                self._visit(shard, entry.index, ids)
        return len(rows)

    def _visit(self, shard: int, index: Index, ids: list[bytes]) -> None:
        finding = self.findings.setdefault(index.name, Finding(index.name, READY))
        before = finding.repaired
        self._check(shard, index, ids, finding, repair=True)
        if finding.repaired > before:
            logger.warning("repaired %d entities in %s", finding.repaired - before, index.name)

    def _recent(self, shard: int, mark: tuple[Any, int] | None) -> list[Any]:
        """The next batch by ``updated`` descending, after ``mark`` (None: from the newest)."""
        stmt = sa.select(entities.c.added_id, entities.c.id, entities.c.kind, entities.c.updated)
        if mark is not None:
            updated, added_id = mark
            stmt = stmt.where(entities.c.updated <= updated).where(
                sa.or_(entities.c.updated < updated, entities.c.added_id < added_id)
            )
        stmt = stmt.order_by(entities.c.updated.desc(), entities.c.added_id.desc())
        with self.shards[shard].read() as conn:
            return list(conn.execute(stmt.limit(self.batch_size)).all())


def _diff(
    expected: list[Key], version: int | None, actual: list[tuple[Key, int]]
) -> tuple[int, ...]:
    """(missing, stale, extra) rows of one entity, as the module docstring defines them."""
    want = collections.Counter(expected)
    have = collections.Counter(key for key, _ in actual)
    only_want, only_have = sum((want - have).values()), sum((have - want).values())
    paired = min(only_want, only_have)
    old = min(sum(1 for key, v in actual if key in want and v != version), len(expected))
    return only_want - paired, paired + old, only_have - paired


def _accounted(index: Index, state: State | None, home: int, shard: int) -> bool:
    """Whether the per-entity comparison covers this entity's rows on ``shard``."""
    if state is None or state.kind != index.kind:
        return False
    return index.shard_on is not None or home == shard


def _pending(conn: Connection, ids: list[bytes]) -> set[bytes]:
    """The ids among these with change rows the indexer has not applied yet."""
    if not ids:
        return set()
    stmt = sa.select(entity_changes.c.entity_id).where(entity_changes.c.entity_id.in_(ids))
    return {bytes(row[0]) for row in conn.execute(stmt)}
