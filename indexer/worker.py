"""Worker: drains the change log into the index tables.

Each batch is one transaction on one shard: claim up to ``batch_size`` change rows (``FOR UPDATE
SKIP LOCKED`` on MySQL, so many workers share the log; SQLite's write lock serialises them),
re-read the entities, rewrite their rows in every building or ready index (through
:class:`~schemaless.index_writer.IndexWriter`), delete the claimed rows, commit. The log is never
tailed by ``seq > last``: auto-increment values become visible out of order. A crash anywhere
rolls the batch back, and replaying it gives the same index state. Poison never stops it: a
batch that fails for a reason a retry will not cure (an undecodable body, a value the server
refuses) is rolled back and applied again entity by entity, and the entities that fail alone
are set aside (:mod:`schemaless.failures`) while the rest of the batch is applied.

    >>> Worker(store, burst=True).run()    # drain what is there, then return
    >>> Worker(store, shards=["s0"]).run()  # drain one shard's log: workers scale with shards
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from schemaless import dialect, failures
from schemaless.errors import ConfigurationError, ShardBusy, ShardUnavailable
from schemaless.store import Store
from schemaless.tables import entity_changes

from .signals import on_stop

logger = logging.getLogger(__name__)

MAX_BATCH = 1000  # change rows claimed at once: the distributed-engine rule of batches


@dataclasses.dataclass(frozen=True)
class IndexerOptions:
    """How a worker claims and waits."""

    batch_size: int = 500
    poll_interval: float = 0.05
    max_poll_interval: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:  # 0 would claim nothing and spin forever
            raise ConfigurationError(f"batch_size must be between 1 and {MAX_BATCH}")
        if not 0 < self.poll_interval <= self.max_poll_interval:
            raise ConfigurationError("poll intervals must be positive, the first the smaller")


@dataclasses.dataclass
class Stats:
    """What a worker did, for logs and metrics."""

    applied: int = 0
    batches: int = 0
    skipped: int = 0  # entities left out of an index: a value its column cannot hold
    set_aside: int = 0  # entities set aside: poison that failed their apply
    last_batch_seconds: float = 0.0
    lag_seconds: float = 0.0


class Worker:
    """One indexer loop over the shards of a store it drains (``shards``: names; all by default)."""

    def __init__(
        self,
        store: Store,
        options: IndexerOptions | None = None,
        *,
        burst: bool = False,
        max_batches: int | None = None,
        install_signal_handlers: bool = True,
        shards: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.drained = _positions(store, shards)
        self.options = options or IndexerOptions()
        self.burst = burst
        self.max_batches = max_batches
        self.install_signal_handlers = install_signal_handlers
        self.writer = store.index_writer
        self.stats = Stats()
        self._stopping = threading.Event()
        self._idle = 0.0
        self._reported = (time.monotonic(), 0)
        self._down: set[int] = set()
        self._down_logged = 0.0

    def stop(self) -> None:
        """Finish the batch under way, then return from run()."""
        self._stopping.set()

    def run(self) -> bool:
        """Loop until stopped (or drained, with burst); True when anything was applied."""
        with on_stop(self.stop, install=self.install_signal_handlers):
            names = ", ".join(self.store.shards[n].name for n in self.drained)
            logger.info("worker started on %d shard(s): %s", len(self.drained), names)
            while not self._stopping.is_set() and not self._enough():
                if self.run_once():
                    self._idle = 0.0
                elif self.burst and self._pending() == 0:
                    self._report(every=0.0)
                    break
                else:
                    self._stopping.wait(self._backoff())
        return self.stats.applied > 0

    def run_once(self) -> int:
        """One batch on every shard; the number of changes applied.

        A shard that is down or restarting costs its own batch only: the others are drained,
        and its changes wait in its log until it is back (the daemon never exits for it).
        """
        applied = 0
        for shard in self.drained:
            try:
                applied += self._batch(shard)
                self._down.discard(shard)
            except ShardBusy:
                logger.info("batch on shard %s hit a lock conflict; retrying", shard)
            except ShardUnavailable as exc:
                self._unavailable(shard, exc)
            except ConfigurationError as exc:
                if not _index_dropped(exc):
                    raise
                logger.info("an index was dropped under a batch on shard %s; retrying", shard)
        return applied

    def _pending(self) -> int:
        """Change rows waiting in the logs this worker drains (all of them: held ones too)."""
        count = sa.select(sa.func.count()).select_from(entity_changes)
        total = 0
        for shard in self.drained:
            with self.store.shards[shard].read() as conn:
                total += conn.execute(count).scalar_one()
        return total

    def _unavailable(self, shard: int, exc: ShardUnavailable) -> None:
        """Log a shard's outage once when it starts, then every half minute while it lasts."""
        now = time.monotonic()
        if shard not in self._down or now - self._down_logged >= 30.0:
            logger.warning("shard %s unavailable, its changes wait: %s", shard, exc)
            self._down_logged = now
        self._down.add(shard)

    def _batch(self, shard: int) -> int:
        started = time.perf_counter()
        try:
            with self.store.shards[shard].begin() as conn:
                claimed = self._claim(conn)
                if not claimed:
                    return 0
                skipped, set_aside = self._apply(conn, shard, claimed), 0
                self._delete(conn, claimed)
        except _Poisoned as poisoned:  # rolled back: take the same changes again, one by one
            logger.info(
                "batch on shard %s failed (%s); applying it entity by entity", shard, poisoned
            )
            claimed, skipped, set_aside = self._isolate(shard, poisoned.seqs)
            if not claimed:
                return 0
        self._record(claimed, skipped, set_aside, time.perf_counter() - started)
        return len(claimed)

    def _apply(self, conn: Any, shard: int, claimed: list[Any]) -> int:
        """Apply the claimed changes in one go; the entities left out of an index.

        Raises _Poisoned when they fail for a reason a retry will not cure (see
        schemaless.failures): the batch is rolled back and handed to :meth:`_isolate`.
        """
        ids, kinds = [c.entity_id for c in claimed], {c.kind for c in claimed}
        try:
            return self.writer.apply_in(conn, ids, shard=shard, kinds=kinds).skipped
        except Exception as exc:
            raise _Poisoned(self._poison(shard, exc), [c.seq for c in claimed]) from exc

    def _isolate(self, shard: int, seqs: list[int]) -> tuple[list[Any], int, int]:
        """Apply a poisoned batch's changes entity by entity, each under a savepoint, setting
        aside those that fail alone: (changes claimed, entities left out, entities set aside).

        The poisoned path only: the batches that apply cleanly pay for no savepoint.
        """
        with self.store.shards[shard].begin() as conn:
            claimed = self._claim(conn, seqs)  # those another worker has not taken meanwhile
            by_entity: dict[bytes, list[Any]] = {}
            for change in claimed:
                by_entity.setdefault(bytes(change.entity_id), []).append(change)
            skipped, cured = 0, []
            for entity_id, changes in by_entity.items():
                try:
                    skipped += self._apply_alone(conn, shard, entity_id, changes)
                    cured.append(entity_id)
                except Exception as exc:
                    self._set_aside(conn, entity_id, changes, self._poison(shard, exc))
            failures.clear(conn, cured)
            self._delete(conn, claimed)
        return claimed, skipped, len(by_entity) - len(cured)

    def _apply_alone(self, conn: Any, shard: int, entity_id: bytes, changes: list[Any]) -> int:
        kinds = {c.kind for c in changes}
        with failures.savepoint(conn):
            return self.writer.apply_in(conn, [entity_id], shard=shard, kinds=kinds).skipped

    def _set_aside(self, conn: Any, entity_id: bytes, changes: list[Any], error: Exception) -> None:
        last = max(changes, key=lambda c: c.version)
        failures.set_aside(conn, entity_id, last.kind, last.version, failures.describe(error))

    def _poison(self, shard: int, exc: Exception) -> Exception:
        """``exc`` as the shard layer maps it, when it is poison; else ``exc`` is raised again."""
        error = self.store.shards[shard].error(exc)
        if not failures.is_poison(error):
            raise exc
        return error

    def _claim(self, conn: Any, seqs: list[int] | None = None) -> list[Any]:
        stmt = (
            sa.select(
                entity_changes.c.seq,
                entity_changes.c.entity_id,
                entity_changes.c.kind,
                entity_changes.c.version,
                entity_changes.c.created,
            )
            .order_by(entity_changes.c.seq)
            .limit(self.options.batch_size)
        )
        if seqs is not None:
            stmt = stmt.where(entity_changes.c.seq.in_(seqs))
        return list(conn.execute(dialect.for_update_skip_locked(stmt, conn)).all())

    def _delete(self, conn: Any, claimed: list[Any]) -> None:
        seqs = [r.seq for r in claimed]
        conn.execute(entity_changes.delete().where(entity_changes.c.seq.in_(seqs)))

    def _record(self, claimed: list[Any], skipped: int, set_aside: int, seconds: float) -> None:
        stats = self.stats
        stats.applied += len(claimed)
        stats.batches += 1
        stats.skipped += skipped
        stats.set_aside += set_aside
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


class _Poisoned(Exception):
    """A batch failed for a reason a retry will not cure; ``seqs`` are its change rows."""

    def __init__(self, error: Exception, seqs: list[int]) -> None:
        super().__init__(failures.describe(error))
        self.seqs = seqs


def _positions(store: Store, names: Sequence[str] | None) -> list[int]:
    """The positions of the shards named (all of them when None); an unknown name is an error."""
    known = {shard.name: n for n, shard in enumerate(store.shards)}
    if names is None:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ConfigurationError(
            f"no shard named {', '.join(unknown) or '(none given)'}: the shards are "
            f"{', '.join(known)}"
        )
    return sorted({known[name] for name in names})


def _index_dropped(exc: ConfigurationError) -> bool:
    """An index table dropped under the batch (not the fixed tables missing): try it again."""
    return "index_" in str(exc.__cause__)
