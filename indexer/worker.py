"""Worker: drains the change log into the index tables.

Each batch is one transaction on one shard: claim up to ``batch_size`` change rows (``FOR UPDATE
SKIP LOCKED`` on MySQL, so many workers share the log; SQLite's write lock serialises them),
re-read the entities, rewrite their rows in every building or ready index (through
:class:`~schemaless.index_writer.IndexWriter`), delete the claimed rows, commit. The log is never
tailed by ``seq > last``: auto-increment values become visible out of order. A crash anywhere
rolls the batch back, and replaying it gives the same index state.

    >>> Worker(store, burst=True).run()    # drain what is there, then return
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from schemaless import dialect
from schemaless.index_writer import IndexWriter
from schemaless.store import Store
from schemaless.tables import entity_changes

from .signals import on_stop

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IndexerOptions:
    """How a worker claims and waits."""

    batch_size: int = 500
    poll_interval: float = 0.05
    max_poll_interval: float = 1.0


@dataclasses.dataclass
class Stats:
    """What a worker did, for logs and metrics."""

    applied: int = 0
    batches: int = 0
    skipped: int = 0
    last_batch_seconds: float = 0.0
    lag_seconds: float = 0.0


class Worker:
    """One indexer loop over every shard of a store."""

    def __init__(
        self,
        store: Store,
        options: IndexerOptions | None = None,
        *,
        burst: bool = False,
        max_batches: int | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        self.store = store
        self.options = options or IndexerOptions()
        self.burst = burst
        self.max_batches = max_batches
        self.install_signal_handlers = install_signal_handlers
        self.writer = IndexWriter(store)
        self.stats = Stats()
        self._stopping = threading.Event()
        self._idle = 0.0
        self._reported = (time.monotonic(), 0)

    def stop(self) -> None:
        """Finish the batch under way, then return from run()."""
        self._stopping.set()

    def run(self) -> bool:
        """Loop until stopped (or drained, with burst); True when anything was applied."""
        with on_stop(self.stop, install=self.install_signal_handlers):
            logger.info("worker started on %d shard(s)", len(self.store.shards))
            while not self._stopping.is_set() and not self._enough():
                if self.run_once():
                    self._idle = 0.0
                elif self.burst and self.store.pending_changes() == 0:
                    self._report(every=0.0)
                    break
                else:
                    self._stopping.wait(self._backoff())
        return self.stats.applied > 0

    def run_once(self) -> int:
        """One batch on every shard; the number of changes applied."""
        applied = 0
        for shard in range(len(self.store.shards)):
            try:
                applied += self._batch(shard)
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc):
                    raise
                logger.info("batch on shard %d hit a lock conflict; retrying", shard)
        return applied

    def _batch(self, shard: int) -> int:
        started = time.perf_counter()
        with self.store.shards.engines[shard].begin() as conn:
            claimed = self._claim(conn)
            if not claimed:
                return 0
            outcome = self.writer.apply_in(
                conn, [r.entity_id for r in claimed], shard=shard, kinds={r.kind for r in claimed}
            )
            seqs = [r.seq for r in claimed]
            conn.execute(entity_changes.delete().where(entity_changes.c.seq.in_(seqs)))
        self._record(claimed, outcome.skipped, time.perf_counter() - started)
        return len(claimed)

    def _claim(self, conn: Any) -> list[Any]:
        stmt = (
            sa.select(
                entity_changes.c.seq,
                entity_changes.c.entity_id,
                entity_changes.c.kind,
                entity_changes.c.created,
            )
            .order_by(entity_changes.c.seq)
            .limit(self.options.batch_size)
        )
        return list(conn.execute(dialect.for_update_skip_locked(stmt, conn)).all())

    def _record(self, claimed: list[Any], skipped: int, seconds: float) -> None:
        stats = self.stats
        stats.applied += len(claimed)
        stats.batches += 1
        stats.skipped += skipped
        stats.last_batch_seconds = seconds
        stats.lag_seconds = (dialect.utcnow() - min(r.created for r in claimed)).total_seconds()
        logger.debug("applied %d changes in %.1f ms", len(claimed), seconds * 1000)
        self._report()

    def _report(self, every: float = 5.0) -> None:
        """An INFO line of throughput and lag at most every ``every`` seconds."""
        now = time.monotonic()
        if now - self._reported[0] < every and not self._stopping.is_set():
            return
        applied = self.stats.applied - self._reported[1]
        rate = applied / max(now - self._reported[0], 1e-9)
        logger.info(
            "applied %d changes (%.0f/s), lag %.2f s", applied, rate, self.stats.lag_seconds
        )
        self._reported = (now, self.stats.applied)

    def _enough(self) -> bool:
        return self.max_batches is not None and self.stats.batches >= self.max_batches

    def _backoff(self) -> float:
        self._idle = min(
            max(self._idle * 2, self.options.poll_interval), self.options.max_poll_interval
        )
        return self._idle


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """A lock conflict, or an index table dropped under the batch: try it again."""
    dropped = dialect.error_code(exc) == 1146 or "no such table" in str(exc.orig)
    return dialect.is_transient(exc) or dropped
