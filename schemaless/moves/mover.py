"""Mover: runs bucket moves through their phases, resumably.

As Vitess's MoveTables and Reshard do (copy, catch up from the binlog, then SwitchWrites: the
source's denied-tables rule and a lock that waits out the writes in flight, a last catch-up,
the routing flip, and no way back after it), a move here:

1. copies the buckets' entities and index rows from the source to the target, in keyset
   batches, with its position stored after each (a killed copy resumes there);
2. catches up by ``updated`` until a pass finds little left (see copier.py);
3. freezes: the source's fence refuses the buckets' writes (``fence.refuse``, whose lock
   waits for the writes under way, so none can commit behind the last pass);
4. copies the last changes, lets the target take the buckets' writes, and writes the new map
   (version + 1) on every shard, source and target first. Writers refused meanwhile reload
   the map and write on the target; the freeze lasts as long as one catch-up pass and the
   map's writes (``frozen_ms``, well under a second);
5. hands the buckets' pending change rows to the target's log, waits a grace period (every
   process re-reads the map's version at least every ``shards.REFRESH`` seconds), rewrites
   the index rows concerned by the new map, and deletes the old copies.

The source goes on refusing the buckets for good: a process that never reloaded its map is
refused, reloads, and writes on the new owner. A move killed at any point is finished by
:meth:`Mover.resume` (``schemaless shards move`` runs it first); one not flipped yet can
instead be rolled back with :meth:`Mover.abort`.

    >>> mover = Mover(store)
    >>> for move in mover.plan([0, 1, 2], target="s2"):
    ...     mover.run(move)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import fence
from ..bucket_map import DEFAULT_GROUP, BucketMap
from ..dialect import utcnow
from ..errors import ConfigurationError, ShardBusy
from ..shards import ARM_TRUST, REFRESH
from ..store import Store
from ..tables import shard_map
from . import plan, record
from .copier import Copier
from .record import ABORTED, CATCHING_UP, CLEANING, COPYING, DONE, FLIPPED, FROZEN, Move

logger = logging.getLogger(__name__)

FREEZE_LOCK_WAIT = 1  # seconds the freeze waits for the writes under way, then tries again

# progress(name, done, total) -> a context manager with update(count): indexer's Progress.
ProgressFactory = Callable[[str, int, int], Any]


@dataclasses.dataclass(frozen=True)
class MoveOptions:
    """How a move runs.

    ``margin``: seconds by which a write's ``updated`` stamp may precede its commit (and the
    writers' clocks differ); each catch-up pass looks back that far. ``converge``: a pass
    finding at most this many changed entities lets the move freeze. ``grace``: seconds after
    the flip before old copies go, so that every process has re-read the map.
    """

    batch_size: int = 500
    margin: float = 10.0
    converge: int = 200
    passes: int = 20
    grace: float = 2 * REFRESH + 1.0
    freeze_attempts: int = 10
    arm_grace: float | None = None  # None: ARM_TRUST + three statement timeouts + 1 s


class Mover:
    """Plans, runs, resumes and rolls back the moves of one store."""

    def __init__(
        self,
        store: Store,
        options: MoveOptions | None = None,
        *,
        progress: ProgressFactory | None = None,
    ) -> None:
        self.store = store
        self.shards = store.shards
        self.options = options or MoveOptions()
        self.progress = progress or _no_progress
        self._frozen_at: float | None = None

    # -- planning --------------------------------------------------------------------------

    def plan(self, buckets: Sequence[int], target: str, group: str = DEFAULT_GROUP) -> list[Move]:
        """Moves (one per current owner) taking ``buckets`` of ``group`` to ``target``, stored."""
        current = self._current(group)
        self._check(target, buckets, group)
        moves = [
            Move.new(group, taken, source, target)
            for source, taken in plan.by_owner(current, buckets, target).items()
        ]
        for move in moves:
            record.save(self.shards, move)
        return moves

    def rebalance(self, group: str = DEFAULT_GROUP) -> list[Move]:
        """Moves giving every shard of ``group`` (its owners, and listed shards that own no
        bucket of any group) an even share of the buckets, stored."""
        current = self._current(group)
        owning = {name for m in self.shards.maps().values() for name in m.shards}
        members = current.shards + [s.name for s in self.shards if s.name not in owning]
        moves = []
        for source, target, buckets in plan.rebalance(current, members):
            self._check(target, buckets, group)
            moves.append(Move.new(group, buckets, source, target))
            record.save(self.shards, moves[-1])
        return moves

    def open_moves(self) -> list[Move]:
        return [move for move in record.listed(self.shards) if move.is_open]

    def _current(self, group: str) -> BucketMap:
        self.shards.reload()
        maps = self.shards.maps()
        if group not in maps:
            raise ConfigurationError(f"no shard group {group!r}: known {sorted(maps)}")
        return maps[group]

    def _check(self, target: str, buckets: Sequence[int], group: str) -> None:
        if target not in self.shards.positions_by_name:
            raise ConfigurationError(f"no shard {target!r} among those given (add it first)")
        grouped = [g for g, m in self.shards.maps().items() if g != group and target in m.shards]
        if grouped:
            raise ConfigurationError(f"shard {target!r} holds buckets of group {grouped[0]!r}")
        wanted = set(buckets)
        for move in self.open_moves():
            if move.group == group and wanted & set(move.buckets):
                raise ConfigurationError(
                    f"buckets of move {move.id} are still moving ({move.phase}): run "
                    "`schemaless shards move` again to finish it, or abort it first"
                )

    # -- running ---------------------------------------------------------------------------

    def resume(self) -> list[Move]:
        """Finish every move left open (killed, or interrupted by an error)."""
        return [self.run(move) for move in self.open_moves()]

    def run(self, move: Move, *, until: str = DONE) -> Move:
        """Take ``move`` through its remaining phases (up to ``until``, say ``"catching_up"``
        to stop once copied); returns it."""
        copier = Copier(self.store, move, self.options.batch_size)
        steps: dict[str, Callable[[Copier, Move], None]] = {
            COPYING: self._copy,
            CATCHING_UP: self._catch_up,
            FROZEN: self._flip,
            FLIPPED: self._hand_over,
            CLEANING: self._clean,
        }
        if move.phase in (COPYING, CATCHING_UP):
            self._arm()
        while move.is_open and move.phase != until:
            logger.info("%s", move.describe())
            steps[move.phase](copier, move)
        logger.info("%s", move.describe())
        return move

    def _arm(self) -> None:
        """Make every process read the fence in its writes before anything freezes.

        A store never moved writes without reading the fence (``ShardMap.fenced``: a put's
        statement saved) as long as its last read of the stored map found every version at 1.
        Arming raises every such map to version 2, owners unchanged, on every shard, then waits
        until no process can still trust an older read, nor have a write in flight that began
        under it (``arm_grace``). Done once per store: a moved store stays armed.
        """
        bump = shard_map.update().where(shard_map.c.version == 1)
        if any(m.version > 1 for m in self._armed_maps()):  # armed (or moved) before
            return
        for shard in self.shards:
            with shard.begin() as conn:
                conn.execute(bump, {"version": 2, "updated": utcnow()})
        self.shards.reload()
        wait = self.options.arm_grace
        if wait is None:
            wait = ARM_TRUST + 3 * max(shard.timeout for shard in self.shards) + 1.0
        logger.info("fence armed on every shard; waiting %.1f s for every writer to see it", wait)
        time.sleep(wait)

    def _armed_maps(self) -> list[BucketMap]:
        self.shards.reload()
        return list(self.shards.maps().values())

    def abort(self, move: Move) -> Move:
        """Roll back a move not flipped yet: the source takes the writes again, the target's
        copies go."""
        if move.is_flipped:
            raise ConfigurationError(f"move {move.id} has flipped the map: it can only finish")
        copier = Copier(self.store, move, self.options.batch_size)
        with copier.source.begin() as conn:
            fence.accept(conn, copier.number, move.buckets)
        copier.delete_copies(copier.target)
        move.phase = ABORTED
        record.save(self.shards, move)
        return move

    def _copy(self, copier: Copier, move: Move) -> None:
        if move.watermark is None:  # read before the first row is copied
            move.watermark = copier.watermark() or utcnow()
            move.total = copier.count()
            record.save(self.shards, move)
        with self.progress(f"move {move.id}", move.copied, move.total) as bar:
            for count in copier.entity_batches():
                move.copied += count
                bar.update(count)
                record.save(self.shards, move)
        copier.copy_value_rows()
        move.phase = CATCHING_UP
        record.save(self.shards, move)

    def _catch_up(self, copier: Copier, move: Move) -> None:
        for _ in range(self.options.passes):
            if copier.catch_up(self.options.margin) <= self.options.converge:
                break
        for attempt in range(self.options.freeze_attempts):
            try:
                self._refuse(copier, move)
                break
            except ShardBusy:  # a write held the fence past the lock wait: catch up, retry
                logger.info("move %s: the freeze waited too long; trying again", move.id)
                if attempt + 1 == self.options.freeze_attempts:
                    raise
                copier.catch_up(self.options.margin)
        self._frozen_at = time.monotonic()
        move.phase = FROZEN
        record.save(self.shards, move)

    def _refuse(self, copier: Copier, move: Move) -> None:
        with copier.source.begin() as conn, _short_lock_wait(conn, copier.source.is_mysql):
            fence.refuse(conn, copier.number, move.buckets)

    def _flip(self, copier: Copier, move: Move) -> None:
        """The frozen phase: last changes, the target takes the buckets, the map flips."""
        if self._frozen_at is None:  # resumed: the fence may not have committed
            self._refuse(copier, move)
            self._frozen_at = time.monotonic()
        copier.catch_up(self.options.margin)
        with copier.target.begin() as conn:
            fence.accept(conn, copier.number, move.buckets)
        self._write_map(move)
        move.frozen_ms = (time.monotonic() - self._frozen_at) * 1000
        self._frozen_at = None
        move.phase = FLIPPED
        record.save(self.shards, move)
        self.shards.reload()
        logger.info("move %s: writes frozen for %.0f ms", move.id, move.frozen_ms)

    def _write_map(self, move: Move) -> None:
        """The map with the buckets owned by the target, version + 1, on every shard."""
        current = self._current(move.group)
        owners = list(current.owners)
        if any(owners[b] != move.target for b in move.buckets):
            strays = [b for b in move.buckets if owners[b] != move.source]
            if strays:
                raise ConfigurationError(f"move {move.id}: buckets {strays} left {move.source}")
            for bucket in move.buckets:
                owners[bucket] = move.target
            current = BucketMap(move.group, current.number, current.version + 1, tuple(owners))
        first = {move.source: 0, move.target: 1}  # those the writers meet first
        ordered = sorted(self.shards, key=lambda shard: first.get(shard.name, 2))
        values = {"version": current.version, "owners": current.encoded(), "updated": utcnow()}
        for shard in ordered:
            with shard.begin() as conn:
                where = (shard_map.c.shard_group == move.group) & (
                    shard_map.c.version < current.version
                )
                conn.execute(shard_map.update().where(where), values)

    def _hand_over(self, copier: Copier, move: Move) -> None:
        copier.move_changes()
        time.sleep(self.options.grace)  # every process re-reads the map meanwhile
        move.phase = CLEANING
        record.save(self.shards, move)

    def _clean(self, copier: Copier, move: Move) -> None:
        rewritten = copier.reconcile()
        deleted = copier.delete_copies(copier.source)
        logger.info(
            "move %s: index rows of %d entities rewritten, %d old copies deleted",
            move.id,
            rewritten,
            deleted,
        )
        move.phase = DONE
        record.save(self.shards, move)


@contextlib.contextmanager
def _short_lock_wait(conn: Any, is_mysql: bool) -> Iterator[None]:
    """The freeze's lock waits at most FREEZE_LOCK_WAIT s: writers queue behind it meanwhile."""
    if not is_mysql:
        yield
        return
    conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {FREEZE_LOCK_WAIT}")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.exec_driver_sql(
                "SET SESSION innodb_lock_wait_timeout = @@GLOBAL.innodb_lock_wait_timeout"
            )


class _Bar:
    def update(self, count: int) -> None:
        pass


@contextlib.contextmanager
def _no_progress(name: str, done: int, total: int) -> Iterator[_Bar]:
    yield _Bar()
