"""Backfill: fill a building index from the entities already stored, then mark it ready.

From the moment an index is added the indexer maintains it for every new write; what it lacks
are the entities written before. The backfill walks ``entities`` of the index's kind on every
shard by ``added_id`` (keyset batches over the ``(kind, added_id)`` key, never OFFSET), and
hands each batch to :meth:`~schemaless.index_writer.IndexWriter.apply_in`, the one function
that writes index rows. Each batch is one short transaction that also stores the shard's
position, so a killed backfill resumes exactly after the last batch that committed.

Concurrent writes and workers stay correct without any coordination: each batch is read
``FOR UPDATE``, as ``apply_in`` reads what it indexes, so a write either commits before the
batch reads it (and the batch indexes the new version) or waits for the batch to commit (and the
indexer, which maintains building indexes, rewrites the rows from its change row afterwards);
and a worker applying one of the batch's entities either commits first (the batch then replaces
its rows) or waits (and replaces the batch's). Shared locks would let both insert.

    >>> Backfill(store, "entry_by_user", rate=5000).run()    # entities indexed in this run
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schemaless import dialect, failures
from schemaless.errors import ConfigurationError, IndexRequired, ShardBusy
from schemaless.registry import READY, RETIRED
from schemaless.store import Store
from schemaless.tables import entities

from .signals import on_stop

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
LOG_EVERY = 5.0  # seconds between progress lines when no terminal shows a bar
_KIND_KEY = "ix_entities_kind_added"


@dataclasses.dataclass
class Cursor:
    """Where the backfill stands on one shard: past ``position``, up to ``end`` (inclusive)."""

    shard: int
    position: int
    end: int
    done: int
    total: int


class Backfill:
    """Builds one index from the stored entities, resumably and at a bounded rate."""

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        rate: float | None = None,
        batch_size: int = MAX_BATCH,
        progress: bool | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ConfigurationError(f"batch_size must be between 1 and {MAX_BATCH}")
        if rate is not None and rate <= 0:
            raise ConfigurationError("rate must be positive")
        self.store = store
        self.index = store.registry.get(name).index  # IndexRequired when there is none
        self.rate = rate
        self.batch_size = batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.install_signal_handlers = install_signal_handlers
        self.writer = store.index_writer
        self.indexed = 0
        self._stopping = threading.Event()
        self._started = 0.0

    def stop(self) -> None:
        """Finish the batch under way, then return from run(); the position is kept."""
        self._stopping.set()

    def run(self) -> int:
        """Backfill every shard and mark the index ready; the entities indexed in this run.

        A stopped run returns early and leaves the index building, to be resumed later.
        """
        state = self.store.registry.get(self.index.name).state
        if state == RETIRED:
            raise IndexRequired(f"index {self.index.name!r} is retired")
        if state == READY:
            logger.info("index %s is ready already: nothing to backfill", self.index.name)
            return 0
        with on_stop(self.stop, install=self.install_signal_handlers):
            self._run()
        return self.indexed

    def _run(self) -> None:
        cursors = [self._cursor(shard) for shard in range(len(self.store.shards))]
        self._started = time.monotonic()
        with Progress(self.index.name, cursors, show=self.progress) as progress:
            for cursor in cursors:
                while not self._stopping.is_set() and self._step(cursor, progress):
                    self._throttle()
        if self._stopping.is_set():
            logger.info("backfill of %s stopped; run it again to resume", self.index.name)
            return
        self.store.registry.set_state(self.index.name, READY)
        logger.info("index %s is ready after indexing %d entities", self.index.name, self.indexed)

    def _cursor(self, shard: int) -> Cursor:
        """Resume from the stored position, up to the last entity that exists now.

        Entities added later need no backfill: the indexer indexes them from their change rows.
        """
        entry = self.store.registry.get(self.index.name, shard)
        of_kind = entities.c.kind == self.index.kind
        with self.store.shards[shard].read() as conn:
            end = conn.execute(sa.select(sa.func.max(entities.c.added_id)).where(of_kind))
            cursor = Cursor(shard, entry.position, end.scalar() or 0, entry.done, 0)
            left = sa.select(sa.func.count()).where(*self._pending(cursor))
            cursor.total = cursor.done + conn.execute(left).scalar_one()
        return cursor

    def _pending(self, cursor: Cursor) -> list[Any]:
        """The conditions picking the live entities of the kind still to be indexed."""
        return [
            entities.c.kind == self.index.kind,
            entities.c.added_id > cursor.position,
            entities.c.added_id <= cursor.end,
            entities.c.body.is_not(None),
        ]

    def _step(self, cursor: Cursor, progress: Progress) -> bool:
        """One batch, retried on a lock conflict; False once the shard is done.

        A deadlock (the batch locks in ``added_id`` order, a worker's batch in id order) or a
        lock wait timeout rolled the whole batch back, its position included: run it again.
        """
        try:
            count = self._batch(cursor)
        except ShardBusy:
            logger.info("backfill batch on shard %d hit a lock conflict; retrying", cursor.shard)
            self._stopping.wait(0.05)
            return True
        self.indexed += count
        progress.update(count)
        return count > 0

    def _batch(self, cursor: Cursor) -> int:
        """Index the next batch and store the position, in one transaction on the shard.

        The batch is read once, locked ``FOR UPDATE`` as ``apply_in`` would lock it, and its
        states are handed over: a second read of the same rows by id, in the id order every
        other applier locks in, cost a fifth of the backfill's rate, and under a worker's
        concurrent batches more (both waited), than retrying the occasional deadlock that the
        scan's ``added_id`` order meets (docs/design.md).
        """
        try:
            return self._locked_batch(cursor, self._apply)
        except Exception as exc:
            error = self.store.shards[cursor.shard].error(exc)
            if not failures.is_poison(error):
                raise
            logger.info(
                "backfill batch on shard %s failed (%s); indexing it entity by entity",
                cursor.shard,
                error,
            )
            return self._locked_batch(cursor, self._isolate)

    def _locked_batch(self, cursor: Cursor, apply: Any) -> int:
        select = _select_batch.where(*self._pending(cursor)).limit(self.batch_size)
        with self.store.shards[cursor.shard].begin() as conn:
            rows = conn.execute(dialect.for_update(select, conn)).all()
            if not rows:
                return 0
            apply(conn, cursor.shard, rows)
            self._save(conn, cursor, rows[-1].added_id, cursor.done + len(rows))
        cursor.position, cursor.done = rows[-1].added_id, cursor.done + len(rows)
        return len(rows)

    def _apply(self, conn: Connection, shard: int, rows: list[Any]) -> None:
        states = self.writer.states(row[1:] for row in rows)
        self.writer.apply_in(conn, states, shard=shard, indexes=[self.index], states=states)

    def _isolate(self, conn: Connection, shard: int, rows: list[Any]) -> None:
        """Index a poisoned batch entity by entity, each under a savepoint, setting aside the
        ones that fail alone (an undecodable body, a value the server refuses), as the worker
        does: one bad entity never stops a backfill."""
        for row in rows:
            entity_id = bytes(row.id)
            try:
                with failures.savepoint(conn):
                    self._apply(conn, shard, [row])
            except Exception as exc:
                error = self.store.shards[shard].error(exc)
                if not failures.is_poison(error):
                    raise
                failures.set_aside(conn, entity_id, row.kind, row.version, failures.describe(error))

    def _save(self, conn: Connection, cursor: Cursor, position: int, done: int) -> None:
        registry = self.store.registry
        registry.save_progress(cursor.shard, self.index.name, position, done, cursor.total, conn)

    def _throttle(self) -> None:
        """Sleep so that the run averages at most ``rate`` entities per second."""
        if self.rate is None:
            return
        ahead = self.indexed / self.rate - (time.monotonic() - self._started)
        if ahead > 0:
            self._stopping.wait(ahead)  # a stop wakes it at once


class Progress:
    """A tqdm bar (done, rate, ETA) on a terminal, else a log line every few seconds."""

    def __init__(self, name: str, cursors: list[Cursor], *, show: bool) -> None:
        self.name = name
        self.done = sum(c.done for c in cursors)
        self.total = sum(c.total for c in cursors)
        self.bar: Any = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, desc=name, unit=" entities")
        self._started = self._logged = time.monotonic()
        self._first = self.done

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log()

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        elif time.monotonic() - self._logged >= LOG_EVERY:
            self._log()

    def _log(self) -> None:
        self._logged = time.monotonic()
        rate = (self.done - self._first) / max(self._logged - self._started, 1e-9)
        eta = (self.total - self.done) / rate if rate else float("inf")
        logger.info(
            "backfill %s: %d/%d entities, %.0f/s, ETA %.0f s",
            self.name,
            self.done,
            self.total,
            rate,
            eta,
        )


def _keyset(select: sa.Select[Any]) -> sa.Select[Any]:
    """Pin the ``(kind, added_id)`` key: MySQL must seek to the position, not scan up to it.

    Given ``kind = ? AND added_id > ?``, MariaDB 10.11 picks ``ref`` access on ``kind`` alone and
    filters ``added_id`` row by row from the start of the kind, so that each batch costs as much
    as its position and a backfill turns quadratic (40 ms a batch at 500k entities, against
    2 ms for the range access that this hint forces).
    """
    hint = f"FORCE INDEX ({_KIND_KEY})"
    for name in dialect.MYSQL:
        select = select.with_hint(entities, hint, dialect_name=name)
    return select


_select_batch = _keyset(
    sa.select(
        entities.c.added_id, entities.c.id, entities.c.kind, entities.c.version, entities.c.body
    )
).order_by(entities.c.added_id)
