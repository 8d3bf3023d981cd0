"""Replicas: reads served by a shard's replicas, read-your-writes through GTIDs.

A shard may have replicas (MariaDB or MySQL replication of its server), given to ``connect()``:

    >>> store = schemaless.connect({"s0": url0}, replicas={"s0": [replica_url]}, timeout=1.0)
    >>> store.get(entity_id, consistency="replica")
    >>> store.query("entry", consistency="replica").filter(user_id=7)[:10]

Reads use the primary unless asked. A read asked of a replica gets this guarantee:

- **Read-your-writes, per Store object.** After each committed write on a shard with replicas,
  the store reads the transaction's GTID on the same connection (``@@last_gtid`` on MariaDB,
  ``@@global.gtid_executed`` on MySQL); a replica read on that shard first waits on the replica
  for the highest one written (``MASTER_GTID_WAIT`` / ``WAIT_FOR_EXECUTED_GTID_SET``), at most
  :func:`wait_limit` of the timeout, and reads the primary if the replica has not caught up.
  A replica that missed a wait is not waited on again for ``timeout`` seconds: reads that need
  a wait go straight to the primary meanwhile (counted as ``lagging``). A Store object that
  never wrote on the shard does not wait: it may read what the replica holds, however stale.
- **A dead or silent replica costs one timeout, then nothing.** A replica read that fails
  (refused, dropped, silent for the socket timeout, or any error of the replica's) is read
  again on the primary, with a warning (at most one a minute per replica) and counted
  (``fallbacks``); the replica is then skipped for ``timeout`` seconds and tried again after.
  Only when the primary fails too does the read raise, the primary's :class:`ShardUnavailable`.
- A shard without replicas, asked for ``consistency="replica"``, reads its primary.

The GTID is read only on shards that have replicas, so a store without replicas pays nothing.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import dialect
from .errors import ConfigurationError, InvalidQuery, SchemalessError

if TYPE_CHECKING:
    from .shard import Shard

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRIMARY, REPLICA = "primary", "replica"
CONSISTENCIES = (PRIMARY, REPLICA)
_LOG_EVERY = 60.0  # seconds between warnings about the same replica
_WAIT_MARGIN = 0.25  # seconds the GTID wait leaves before the socket's own read timeout

# The session's last GTID (empty for a session that never wrote) and whether there is a binlog.
_MARIADB_GTID = "SELECT @@last_gtid, @@log_bin"
_MYSQL_GTID = "SELECT @@global.gtid_executed, @@log_bin"
# MySQL's function answers 0 when the set is executed, 1 on timeout.
_MYSQL_WAIT = "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"

ReplicaUrls = Mapping[str, str | Sequence[str]]


def checked(consistency: Any) -> str:
    """``consistency`` as given when it is "primary" or "replica"; else InvalidQuery, raised
    before any SQL is sent."""
    if consistency not in CONSISTENCIES or not isinstance(consistency, str):
        raise InvalidQuery(f"consistency must be 'primary' or 'replica', not {consistency!r}")
    return str(consistency)


def replica_urls(replicas: ReplicaUrls | None, shards: Sequence[str]) -> dict[str, list[str]]:
    """The ``replicas`` option of ``connect()``: for each named shard, its replicas' URLs."""
    if replicas is None:
        return {}
    if not isinstance(replicas, Mapping):
        raise ConfigurationError("replicas must be a dict: {shard name: [replica URL, ...]}")
    checked_urls: dict[str, list[str]] = {}
    for name, urls in replicas.items():
        if name not in shards:
            raise ConfigurationError(f"replicas of shard {name!r}: no such shard, known {shards}")
        listed = [urls] if isinstance(urls, str) else list(urls)
        if not all(isinstance(url, str) and url.strip() for url in listed):
            raise ConfigurationError(f"replicas of shard {name!r} must be URLs, not {urls!r}")
        if listed:  # an empty list: no replicas
            checked_urls[name] = [url.strip() for url in listed]
    return checked_urls


def wait_limit(timeout: float) -> float:
    """How long a replica read waits for the session's GTID: the timeout, but a little less
    than the socket's read timeout (whole seconds, see ``dialect.socket_timeout``), so that the
    server answers "not yet" before the socket gives up on a replica that is merely behind."""
    return max(0.05, min(timeout, dialect.socket_timeout(timeout) - _WAIT_MARGIN))


@dataclass(frozen=True)
class ReplicaStats:
    """Counts since the store was opened (a snapshot), over one shard's replicas."""

    reads: int = 0  # reads a replica served
    waits: int = 0  # reads that waited for this store's GTID first (and got it)
    lagging: int = 0  # reads sent to the primary: the replica lacked this store's writes
    fallbacks: int = 0  # reads sent to the primary: the replica failed, or was skipped after


class Position:
    """The highest GTID per replication domain (MariaDB) or source (MySQL) that one Store
    object committed on a primary: what a replica must have applied before it serves that store.

    Writes of several threads commit in any order; keeping the highest per domain means a wait
    covers every write of the store that returned before the read began.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._highest: dict[str, tuple[int, str]] = {}

    def __bool__(self) -> bool:
        return bool(self._highest)

    def add(self, gtids: str, mariadb: bool) -> None:
        """Note a GTID (MariaDB ``D-S-N``) or a GTID set (MySQL ``uuid:1-N,...``)."""
        found = _mariadb_gtids(gtids) if mariadb else _mysql_gtids(gtids)
        with self._lock:
            for key, (seq, text) in found.items():
                if seq > self._highest.get(key, (-1, ""))[0]:
                    self._highest[key] = (seq, text)

    def text(self) -> str:
        """The position to wait for, as the wait function takes it."""
        with self._lock:
            return ",".join(text for _, text in self._highest.values())


class Replicas:
    """The replicas of one shard, and what this store wrote on its primary.

    ``read(work)`` runs ``work(shard)`` on a replica that holds this store's writes, else on the
    primary. Made by ``Shard.add_replicas``; ``capture`` is called after every commit there.
    """

    def __init__(self, primary: Shard, replicas: Sequence[Shard]) -> None:
        if not replicas:
            raise ConfigurationError(f"shard {primary.name}: an empty list of replicas")
        for shard in (primary, *replicas):
            if not shard.is_mysql:
                raise ConfigurationError(
                    f"shard {primary.name}: replicas need MySQL or MariaDB servers, "
                    f"not {shard.engine.dialect.name} ({shard.name})"
                )
        self.primary = primary
        self.replicas = list(replicas)
        self.timeout = primary.timeout
        self.wait = wait_limit(primary.timeout)
        self.position = Position()
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._down_until = {replica.name: 0.0 for replica in replicas}
        self._lagging_until = {replica.name: 0.0 for replica in replicas}
        self._warned = {replica.name: -math.inf for replica in replicas}
        self._warned_no_gtid = False
        self._counts = dict.fromkeys(("reads", "waits", "lagging", "fallbacks"), 0)

    def __repr__(self) -> str:
        return f"<Replicas of {self.primary.name}: {[r.name for r in self.replicas]}>"

    @property
    def stats(self) -> ReplicaStats:
        with self._lock:
            return ReplicaStats(**self._counts)

    # -- writes: the session's position --------------------------------------------------------

    def capture(self, connection: Any) -> None:
        """Note the GTID of the transaction just committed on ``connection`` (DBAPI).

        Never raises: the write has committed. When the GTID cannot be read there (the
        connection broke right after COMMIT), the primary's whole binlog position is noted
        instead, which covers it; when that fails too, the next replica reads wait for
        whatever position the next write notes.
        """
        mariadb = bool(getattr(self.primary.engine.dialect, "is_mariadb", False))
        try:
            cursor = connection.cursor()
            cursor.execute(_MARIADB_GTID if mariadb else _MYSQL_GTID)
            row = cursor.fetchone()
        except Exception as exc:
            logger.debug("shard %s: the GTID of a write was not read: %s", self.primary.name, exc)
            row = self._binlog_position(mariadb)
        if row and row[0]:
            self.position.add(_text(row[0]), mariadb)
        elif row is not None and not row[1] and not self._warned_no_gtid:
            self._warned_no_gtid = True
            logger.warning(
                "shard %s committed a write without a GTID (is its binary log off?): "
                "replica reads after writes may be stale",
                self.primary.name,
            )

    def _binlog_position(self, mariadb: bool) -> Any:
        sql = "SELECT @@global.gtid_binlog_pos, @@log_bin" if mariadb else _MYSQL_GTID
        try:
            with self.primary.read() as conn:
                return conn.exec_driver_sql(sql).first()
        except SchemalessError:
            return None

    # -- reads ---------------------------------------------------------------------------------

    def read(self, work: Callable[[Shard], T]) -> T:
        """``work`` on a replica that holds this store's writes, else on the primary."""
        replica, skipped = self._choose()
        if replica is None:
            self._count(skipped)
            return work(self.primary)
        try:
            position = self.position.text() if self.position else ""
            if not position or self._caught_up(replica, position):
                found = work(replica)
                self._count("reads")
                return found
        except SchemalessError as exc:
            self._failed(replica, exc)
        else:
            self._count("lagging")
        return work(self.primary)  # outside the try: the primary's own error is the answer

    def _choose(self) -> tuple[Shard | None, str]:
        """The next replica in turn that is not being skipped; else None, and why (the count
        of reads sent to the primary: all were ``lagging``, or some failed: ``fallbacks``)."""
        now = time.monotonic()
        start = next(self._next)
        why = "lagging"
        for offset in range(len(self.replicas)):
            replica = self.replicas[(start + offset) % len(self.replicas)]
            if now < self._down_until[replica.name]:
                why = "fallbacks"
            elif not self.position or now >= self._lagging_until[replica.name]:
                return replica, ""
            # else it missed a wait lately: waiting again would cost the same
        return None, why

    def _caught_up(self, replica: Shard, position: str) -> bool:
        """Whether ``replica`` applied ``position`` within the wait; if not, it is skipped by
        the reads that need a wait for ``timeout`` seconds."""
        mariadb = bool(getattr(self.primary.engine.dialect, "is_mariadb", False))
        sql = "SELECT MASTER_GTID_WAIT(%s, %s)" if mariadb else _MYSQL_WAIT
        answer = _scalar(replica, sql, (position, self.wait))
        if answer is not None and int(answer) == 0:
            self._count("waits")
            return True
        with self._lock:
            self._lagging_until[replica.name] = time.monotonic() + self.timeout
        logger.info(
            "%s did not reach %s within %.2f s; reading the primary",
            replica.name,
            position,
            self.wait,
        )
        return False

    def _failed(self, replica: Shard, exc: SchemalessError) -> None:
        """Skip a replica that failed for ``timeout`` seconds; warn at most once a minute."""
        now = time.monotonic()
        with self._lock:
            self._counts["fallbacks"] += 1
            self._down_until[replica.name] = now + self.timeout
            loud = now - self._warned[replica.name] >= _LOG_EVERY
            if loud:
                self._warned[replica.name] = now
        (logger.warning if loud else logger.debug)(
            "%s failed (%s); reading the primary %s, replica skipped for %.1f s",
            replica.name,
            str(exc)[:200],
            self.primary.name,
            self.timeout,
        )

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.dispose()


def _scalar(shard: Shard, sql: str, params: tuple[Any, ...]) -> Any:
    """One value from a statement on ``shard``: on a kept connection where there are some."""
    if shard.fast is not None:
        rows = shard.fast.select(sql, params)
    else:
        with shard.read() as conn:
            rows = conn.exec_driver_sql(sql, params).all()
    return rows[0][0] if rows else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _mariadb_gtids(text: str) -> dict[str, tuple[int, str]]:
    """``D-S-N[,D-S-N...]`` by domain D: (N, the GTID)."""
    found: dict[str, tuple[int, str]] = {}
    for gtid in filter(None, (part.strip() for part in text.split(","))):
        domain, _, seq = gtid.rpartition("-")
        found[domain.partition("-")[0]] = (int(seq), gtid)
    return found


def _mysql_gtids(text: str) -> dict[str, tuple[int, str]]:
    """``uuid[:tag]:1-N[:M-K...]`` by source (and tag): (the highest number, ``uuid:1-N``).

    Waiting for ``1-N`` rather than the exact intervals is stronger, never weaker: a gap the
    replica never fills makes the wait time out and the read go to the primary.
    """
    found: dict[str, tuple[int, str]] = {}
    for part in filter(None, (part.strip() for part in text.split(","))):
        fields = part.split(":")
        names = [f for f in fields if not f[:1].isdigit()]
        highest = max(int(f.rpartition("-")[2]) for f in fields if f[:1].isdigit())
        key = ":".join(names)
        found[key] = (highest, f"{key}:1-{highest}")
    return found
