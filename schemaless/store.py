"""Store: put, get and delete entities, each write with its change-log row in one transaction.

The write path is deliberately short: validate and encode the body (every error is raised before
any SQL is sent), then one transaction on the entity's shard that writes the entity and appends
one ``entity_changes`` row. The indexer daemons turn those rows into index rows later; with
``indexing="sync"`` the index rows are written in the same transaction instead.

    >>> store = schemaless.connect()
    >>> store.migrate()
    >>> e = store.put("entry", {"user_id": 7, "title": "hi"})
    >>> store.get(e.id)["title"]
    'hi'
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import dialect, fence, ids
from .bucket_map import DEFAULT_GROUP, BucketMap
from .codec import Codec
from .entity import Entity
from .errors import (
    BucketMoved,
    ConfigurationError,
    Conflict,
    DecodeError,
    EntityTooLarge,
    NotFound,
    OutcomeUnknown,
    SchemalessError,
    ShardBusy,
    ShardUnavailable,
)
from .kinds import Kind
from .query import Query
from .replica import PRIMARY, REPLICA, checked
from .shard import Shard
from .shards import ShardMap
from .tables import entities, entity_changes

if TYPE_CHECKING:
    from .cache import Cache
    from .failures import Failure
    from .index import Index
    from .index_writer import IndexWriter
    from .registry import Registry

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_ENTITY_SIZE = 4 * 1024 * 1024
_PACKET_OVERHEAD = 1024  # the INSERT statement around the blob
_NO_PACKET_LIMIT = 1 << 62  # SQLite: no packet carries the blob
# The bytes that mysqlclient's escaping (mysql_real_escape_string) sends as two.
_ESCAPED_BYTES = (b"\x00", b"'", b'"', b"\\", b"\n", b"\r", b"\x1a")
_ATTEMPTS = 5
_BACKOFF = 0.005  # seconds: the most the first retry of a busy write waits, doubled each time
MOVE_WAIT = 5.0  # seconds a write waits for a move's frozen buckets (frozen well under 1 s)
_MOVE_POLL = 0.01
_DUPLICATE_KEY = 1062

_select_entities = sa.select(entities.c.id, entities.c.kind, entities.c.version, entities.c.body)
_select_current = sa.select(entities.c.kind, entities.c.version, entities.c.body.is_(None))


class Store:
    """A set of shards holding entities, their change log and their indexes."""

    def __init__(
        self,
        shards: ShardMap,
        *,
        codec: Codec | None = None,
        indexing: str = "async",
        max_entity_size: int = DEFAULT_MAX_ENTITY_SIZE,
        cache: Cache | None = None,
    ) -> None:
        if indexing not in ("async", "sync"):
            raise ConfigurationError(f"indexing must be 'async' or 'sync', not {indexing!r}")
        if isinstance(max_entity_size, bool) or not isinstance(max_entity_size, int):
            raise ConfigurationError("max_entity_size must be a positive number of bytes")
        if max_entity_size < 1:
            raise ConfigurationError("max_entity_size must be a positive number of bytes")
        self.shards = shards
        self.codec = codec or Codec()
        self.indexing = indexing
        self.max_entity_size = max_entity_size
        self.cache = cache  # read-through for get/get_many, invalidated after writes
        self._limit: int | None = None
        self._registry: Registry | None = None
        self._index_writer: IndexWriter | None = None

    # -- writes -------------------------------------------------------------------------------

    def put(
        self,
        kind: str,
        body: Mapping[str, Any],
        *,
        id: ids.IdLike | None = None,
        expect_version: int | None = None,
    ) -> Entity:
        """Store ``body`` as an entity of ``kind``: a new one, or a new version of ``id``.

        With ``expect_version`` the write is a compare-and-set: it raises :class:`Conflict`
        unless the entity is at that version now (0 means "must not exist yet").
        """
        ids.check_name(kind, "kind")
        given = None if id is None else ids.to_uuid(id)
        blob = self._encode(body)
        if given is None:
            entity_id = self.shards.new_id(kind, body)
        else:  # an existing id keeps its id, and its shard
            entity_id = given
            self.shards.check_id(kind, entity_id.bytes)
        if id is None:
            self._insert_routed([(entity_id.bytes, kind, blob)])
            return Entity(entity_id, kind, 1, self.codec.decode(blob))
        if expect_version and self._updated_fast(entity_id.bytes, kind, blob, expect_version):
            return Entity(entity_id, kind, expect_version + 1, self.codec.decode(blob))

        def write(conn: Connection) -> int:
            version = self._upsert(conn, entity_id.bytes, kind, blob, expect_version)
            self._after_write(conn, [(entity_id.bytes, kind, version)])
            return version

        version = self._write_one(entity_id.bytes, write)
        return Entity(entity_id, kind, version, self.codec.decode(blob))

    def put_many(
        self,
        kind: str,
        bodies: Iterable[Mapping[str, Any]],
        *,
        ids_: Iterable[ids.IdLike] | None = None,
    ) -> list[Entity]:
        """Store many new entities of ``kind``, in one transaction per shard.

        ``ids_`` gives their ids (Django's models mint their own); an id that is stored
        already, even deleted, fails the whole shard's transaction.
        """
        ids.check_name(kind, "kind")
        bodies = list(bodies)
        if ids_ is None:
            minted = [self.shards.new_id(kind, body) for body in bodies]
        else:
            minted = [ids.to_uuid(i) for i in ids_]
            for given in minted:
                self.shards.check_id(kind, given.bytes)
        made = [(i, self._encode(body)) for i, body in zip(minted, bodies, strict=True)]
        rows = [(entity_id.bytes, kind, blob) for entity_id, blob in made]
        self._insert_routed(rows)
        return [Entity(entity_id, kind, 1, self.codec.decode(blob)) for entity_id, blob in made]

    def delete(self, id: ids.IdLike, *, expect_version: int | None = None) -> bool:
        """Delete an entity; False when there was none. Its version keeps counting."""
        entity_id = ids.to_bytes(id)

        def write(conn: Connection) -> int:
            current = self._lock(conn, entity_id)
            if expect_version is not None and _live_version(current) != expect_version:
                raise Conflict(f"entity {uuid.UUID(bytes=entity_id)} is not at {expect_version}")
            if current is None or current[2]:
                return 0
            kind, version = current[0], current[1] + 1
            conn.execute(
                entities.update().where(entities.c.id == entity_id),
                {"version": version, "body": None, "updated": dialect.utcnow()},
            )
            self._after_write(conn, [(entity_id, kind, version)])
            return version

        return self._write_one(entity_id, write) > 0

    # -- reads --------------------------------------------------------------------------------

    def get(self, id: ids.IdLike, *, consistency: str = PRIMARY) -> Entity:
        """The entity with that id; raises :class:`NotFound` (a KeyError) when there is none.

        ``consistency="replica"`` reads it from a replica of its shard, if it has one: one that
        holds every write this store made there, else the primary (see :mod:`schemaless.replica`).
        """
        entity_id = ids.to_uuid(id)
        key = entity_id.bytes
        if consistency != PRIMARY:
            rows = self._read_replicas([key], consistency)
        elif self.cache is not None:
            rows = self.cache.read_through([key], self._fetch_each)
        else:
            rows = self._fetch(self.shards.shard_for_id(key), [key])
        if not rows:
            raise NotFound(f"no entity with id {entity_id}")
        return self._entity(entity_id, rows[0])

    def get_many(
        self, ids_: Iterable[ids.IdLike], *, consistency: str = PRIMARY
    ) -> dict[uuid.UUID, Entity]:
        """The entities with those ids, keyed by id; missing ids are absent.

        ``consistency="replica"``: read from replicas, as :meth:`get` does.
        """
        wanted = {entity_id.bytes: entity_id for entity_id in map(ids.to_uuid, ids_)}
        found: dict[uuid.UUID, Entity] = {}
        keys = list(wanted)
        if consistency != PRIMARY:
            rows = self._read_replicas(keys, consistency)
        elif self.cache is not None:
            rows = self.cache.read_through(keys, self._fetch_each)
        else:
            rows = self._fetch_each(keys)
        for row in rows:
            entity_id = wanted[bytes(row[0])]
            found[entity_id] = self._entity(entity_id, row)
        return found

    # -- schema, indexes, queries -------------------------------------------------------------

    def migrate(self) -> None:
        """Bring every shard's fixed tables to the latest schema (alembic upgrade head)."""
        from .migration import upgrade

        for shard in self.shards:
            with shard.ddl("migrate") as conn:
                upgrade(conn)
        self.shards.install()  # the bucket map and this shard's name, where absent

    def define_kind(
        self, kind: str, *, colocate_on: str | None = None, group: str = DEFAULT_GROUP
    ) -> Kind:
        """Declare where a kind lives: its shard ``group``, and the field it is colocated on.

        With ``colocate_on="user_id"`` new ids of the kind are minted in the bucket of their
        ``user_id``, so a user's entities sit on the shard of their ``shard_on="user_id"``
        index rows and a query pinned by ``user_id`` reads one server, in one statement.
        Stored on every shard; the same declaration again changes nothing, another raises
        :class:`ConfigurationError`, and so does a group for a kind that has entities already.

            >>> store.define_kind("entry", colocate_on="user_id")
            >>> store.define_kind("history", group="history")
        """
        ids.check_name(kind, "kind")
        if colocate_on is not None:
            ids.check_name(colocate_on, "field")
        return self.shards.define(Kind(kind, ids.check_name(group, "shard group"), colocate_on))

    def shard_map(self, group: str = DEFAULT_GROUP) -> BucketMap:
        """The stored bucket map of a shard group: its version, each bucket's owner, and the
        moves of its buckets under way (``moving``, each a :class:`schemaless.moves.Move`)."""
        from .moves import listed

        maps = self.shards.maps()
        if group not in maps:
            raise ConfigurationError(f"no shard group {group!r}: known {sorted(maps)}")
        moving = tuple(m for m in listed(self.shards) if m.is_open and m.group == group)
        return dataclasses.replace(maps[group], moving=moving)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from .registry import Registry

            self._registry = Registry(self.shards)
        return self._registry

    def add_index(self, index: Index) -> str:
        """Create the index's table and register it; returns its state (building or ready)."""
        return self.registry.add(index)

    def drop_index(self, name: str) -> None:
        """Retire the index, stop maintaining it, and drop its table."""
        self.registry.drop(name)

    def indexes(self) -> list[tuple[Index, str]]:
        """Every registered index that is not retired, with its state."""
        return [(i.index, i.state) for i in self.registry.entries()]

    def query(self, kind: str, *, consistency: str = PRIMARY) -> Query:
        """A lazy query over entities of ``kind``; see :class:`schemaless.query.Query`.

        ``consistency="replica"`` reads its index rows and entities from replicas, as
        :meth:`get` does (see :mod:`schemaless.replica`).
        """
        return Query(self, ids.check_name(kind, "kind"), consistency=checked(consistency))

    def wait_for_indexes(self, timeout: float = 5.0) -> bool:
        """Wait until the change log is drained; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.pending_changes() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def pending_changes(self) -> int:
        """How many change rows wait for the indexer, over all shards."""
        count = sa.select(sa.func.count()).select_from(entity_changes)
        total = 0
        for shard in self.shards:
            with shard.read() as conn:
                total += conn.execute(count).scalar_one()
        return total

    def set_aside(self) -> list[Failure]:
        """The entities the indexer set aside: poison it could not apply, with the error.

        ``schemaless indexer --retry-set-aside`` re-queues them once repaired; a new version
        of one that applies cleanly takes it off this list.
        """
        from .failures import listed

        return listed(self.shards)

    def close(self) -> None:
        self.shards.dispose()
        if self.cache is not None:
            self.cache.close()

    # -- the SQL one level down ---------------------------------------------------------------

    def _encode(self, body: Mapping[str, Any]) -> bytes:
        """The body's blob, or EntityTooLarge before any SQL is sent.

        Two limits: ``max_entity_size`` on the blob, and the server's ``max_allowed_packet``
        on the statement that carries it. mysqlclient sends the blob escaped in the
        statement's text, where each of the bytes \\0 ' " \\ \\n \\r \\x1a takes two; they are
        counted only for a blob big enough that escaping could pass the packet (one that
        passed unnoticed failed at the server with "gone away").
        """
        blob = self.codec.encode(body)
        size = len(blob)
        if size > self.max_entity_size:
            raise EntityTooLarge(
                f"encoded body is {size} bytes, over the limit of {self.max_entity_size}"
            )
        budget = self._size_limit()
        if 2 * size > budget:  # escaping at most doubles a blob
            escaped = size + sum(map(blob.count, _ESCAPED_BYTES))
            if escaped > budget:
                raise EntityTooLarge(
                    f"encoded body is {size} bytes, {escaped} once escaped in the statement, "
                    f"over the {budget} that the server's max_allowed_packet leaves for it"
                )
        return blob

    def _size_limit(self) -> int:
        """The bytes an escaped blob may take in a statement: the smallest max_allowed_packet
        of the shards less the statement around it (no limit where no server sets one).

        A shard that does not answer is left out until it does (its own writes fail anyway),
        so a store opened during one shard's outage still writes to the others.
        """
        if self._limit is None:
            limit, complete = _NO_PACKET_LIMIT, True
            for shard in self.shards:
                try:
                    with shard.read() as conn:
                        packet = dialect.max_packet(conn)
                except ShardUnavailable:
                    complete = False
                    continue
                if packet is not None:
                    limit = min(limit, packet - _PACKET_OVERHEAD)
            if not complete:
                return limit
            self._limit = limit
        return self._limit

    def _insert_new(self, shard: Shard, rows: list[tuple[bytes, str, bytes]]) -> None:
        """Write new entities and their change rows in one transaction, the fast way if any."""
        fast = shard.fast if self.indexing == "async" else None
        if fast is None:
            with shard.begin() as conn:
                self._insert(conn, rows)
                self._after_write(conn, [(row[0], row[1], 1) for row in rows])
            return
        now = dialect.utcnow()
        entity_rows = [(i, k, 1, now, b) for i, k, b in rows]
        fast.insert(entity_rows, [row[:4] for row in entity_rows], self.shards.fenced())

    def _updated_fast(self, entity_id: bytes, kind: str, blob: bytes, expected: int) -> bool:
        """A compare-and-set of a new version the fast way (``FastPath.update``), if the shard
        has one: False, with nothing written, when the general way must run instead (the
        entity moved on, its bucket moved, a deadlock): it retries, or names the conflict."""
        fast = self.shards.for_id(entity_id).fast if self.indexing == "async" else None
        if fast is None:
            return False
        try:
            row = (entity_id, kind, expected + 1, dialect.utcnow(), blob)
            fast.update(row, expected, self.shards.fenced())
        except (Conflict, BucketMoved, ShardBusy):
            return False
        except OutcomeUnknown:
            if self.cache is not None:
                self.cache.invalidate([(entity_id, 0)])
            raise
        if self.cache is not None:
            self.cache.invalidate([(entity_id, expected + 1)])
        return True

    def _insert(self, conn: Connection, rows: list[tuple[bytes, str, bytes]]) -> None:
        now = dialect.utcnow()
        for part in dialect.batches(rows):  # INSERTs of at most MAX_ROWS rows
            conn.execute(
                entities.insert(),
                [{"id": i, "kind": k, "version": 1, "updated": now, "body": b} for i, k, b in part],
            )

    def _upsert(
        self, conn: Connection, entity_id: bytes, kind: str, blob: bytes, expect: int | None
    ) -> int:
        current = self._lock(conn, entity_id)
        if expect is not None and _live_version(current) != expect:
            raise Conflict(f"entity {uuid.UUID(bytes=entity_id)} is not at version {expect}")
        if current is None:
            self._insert(conn, [(entity_id, kind, blob)])
            return 1
        if current[0] != kind and not current[2]:
            raise Conflict(f"entity {uuid.UUID(bytes=entity_id)} is a {current[0]!r}, not {kind!r}")
        version = current[1] + 1
        conn.execute(
            entities.update().where(entities.c.id == entity_id),
            {"kind": kind, "version": version, "body": blob, "updated": dialect.utcnow()},
        )
        return version

    def _lock(self, conn: Connection, entity_id: bytes) -> Any:
        """The entity's (kind, version, is_deleted), locked for this transaction; or None."""
        stmt = _select_current.where(entities.c.id == entity_id).with_for_update()
        return conn.execute(stmt).first()

    def _after_write(self, conn: Connection, changes: list[tuple[bytes, str, int]]) -> None:
        """Log the changes for the indexer, or with sync indexing apply them right here."""
        shard = self.shards.for_id(changes[0][0]).name  # the one this transaction writes
        fenced = self.shards.fenced()  # no move ever prepared: no fence to read (shards.py)
        if self.indexing == "sync":
            if fenced:
                fence.check(conn, [c[0] for c in changes], shard)  # before rows on other shards
            self.index_writer.apply_in(conn, [c[0] for c in changes])
            return
        now = dialect.utcnow()
        if len(changes) == 1 and fenced:  # the fence check rides in the change row's INSERT
            entity_id, kind, version = changes[0]
            change = {"entity_id": entity_id, "kind": kind, "version": version, "created": now}
            fence.log_change(conn, change, shard)
            return
        for part in dialect.batches(changes):
            conn.execute(
                entity_changes.insert(),
                [{"entity_id": i, "kind": k, "version": v, "created": now} for i, k, v in part],
            )
        if fenced:
            fence.check(conn, [c[0] for c in changes], shard)

    def _fetch_each(self, id_list: list[bytes]) -> list[Any]:
        """(id, kind, version, body) of the live entities among ``id_list``, on every shard."""
        rows: list[Any] = []
        for shard, group in self.shards.group_by_id(id_list, key=bytes).items():
            rows.extend(self._fetch(shard, group))
        return rows

    def _fetch(self, shard: int, id_list: list[bytes]) -> Sequence[Any]:
        """(id, kind, version, body) of the live entities among ``id_list``."""
        return _fetch_on(self.shards[shard], id_list)

    def _read_replicas(self, keys: list[bytes], consistency: str) -> Sequence[Any]:
        """The rows of ``keys`` read as ``consistency`` asks: cache hits, else replicas.

        A replica may lag behind what others committed, so what it gives never fills the
        cache (a fill would outlive the invalidation of a newer version).
        """
        checked(consistency)  # "replica", else InvalidQuery before any SQL
        if self.cache is not None:
            return self.cache.read_through(keys, self._fetch_replicas, fill=False)
        return self._fetch_replicas(keys)

    def _fetch_replicas(self, id_list: list[bytes]) -> list[Any]:
        """As ``_fetch_each``, each shard's rows from a replica that has this store's writes."""
        rows: list[Any] = []
        for position, group in self.shards.group_by_id(id_list, key=bytes).items():
            read = functools.partial(_fetch_on, id_list=group)
            rows.extend(self.shards[position].serve(read, REPLICA))
        return rows

    def _entity(self, entity_id: uuid.UUID, row: Any) -> Entity:
        try:
            body = self.codec.decode(row[3])
        except DecodeError as exc:
            raise DecodeError(f"entity {entity_id} cannot be read back: {exc}") from exc
        return Entity(entity_id, row[1], row[2], body)

    def _write_one(self, entity_id: bytes, write: Callable[[Connection], int]) -> int:
        """Run one entity's write (returning its new version, 0 for none), then invalidate
        its cached copy: after the commit, and also when the commit's outcome is unknown."""
        try:
            version = self._routed(entity_id, write)
        except OutcomeUnknown:
            if self.cache is not None:
                self.cache.invalidate([(entity_id, 0)])
            raise
        if version and self.cache is not None:
            self.cache.invalidate([(entity_id, version)])
        return version

    def _insert_routed(self, rows: list[tuple[bytes, str, bytes]]) -> None:
        """Insert new entities on their shards, one transaction each; the rows a shard refused
        (their bucket moved: a stale map) go again to their owner by the map read anew."""
        deadline = time.monotonic() + MOVE_WAIT
        while rows:
            refused: list[tuple[bytes, str, bytes]] = []
            for shard, group in self.shards.group_by_id(rows, key=lambda row: row[0]).items():
                try:
                    self._insert_new(self.shards[shard], group)
                except BucketMoved as exc:
                    refused, error = refused + group, exc
            if refused:
                self._rerouted(error, deadline)
            rows = refused

    def _routed(self, entity_id: bytes, write: Callable[[Connection], T]) -> T:
        """``write`` on the entity's shard; again on its new owner when the shard refused it."""
        deadline = time.monotonic() + MOVE_WAIT
        while True:
            try:
                return self._retried(self.shards.for_id(entity_id), write)
            except BucketMoved as exc:
                self._rerouted(exc, deadline)

    def _rerouted(self, error: BucketMoved, deadline: float) -> None:
        """After a refusal: read the bucket map again, so the next try goes to the new owner.

        While a move has its buckets frozen (under a second) the map still names the old
        owner; the write waits a little and tries again, up to ``MOVE_WAIT`` seconds.
        """
        if time.monotonic() >= deadline:
            raise error
        logger.debug("%s; reloading the bucket map", error)
        before = self.shards.maps()
        self.shards.reload()
        if self.shards.maps() == before:
            time.sleep(_MOVE_POLL)

    def _retried(self, shard: Shard, write: Callable[[Connection], T]) -> T:
        """``write(conn)`` in a transaction, run again when it loses a race.

        Two first puts of one id race to INSERT (the loser goes on as an update), and a write
        that locks an entity row can be picked as a deadlock's victim beside the indexer's
        locks; either way the server rolled the whole transaction back, so running it again
        from the start is safe, compare-and-set included. On a Galera cluster, two writers of
        one entity on two nodes fail at COMMIT instead (a certification conflict, also
        ``ShardBusy``): a retry at once would meet the other writer's next commit again, so
        each waits a random while first, growing (at most 5, 10, 20, 40 ms).
        """
        for attempt in range(_ATTEMPTS):
            try:
                with shard.begin() as conn:
                    return write(conn)
            except ShardBusy:
                if attempt + 1 == _ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, _BACKOFF * 2**attempt))
            except SchemalessError as exc:
                if attempt + 1 == _ATTEMPTS or not _lost_insert_race(exc):
                    raise
        raise AssertionError("unreachable")

    @property
    def index_writer(self) -> IndexWriter:
        """The one writer of index rows, made once: sync writes, daemons and repairs share it."""
        if self._index_writer is None:
            from .index_writer import IndexWriter

            self._index_writer = IndexWriter(self)
        return self._index_writer


def _fetch_on(shard: Shard, id_list: list[bytes]) -> Sequence[Any]:
    """(id, kind, version, body) of the live entities among ``id_list``, read on ``shard``."""
    if shard.fast is not None:
        return shard.fast.fetch(id_list)
    rows: list[Any] = []
    with shard.read() as conn:
        for part in dialect.batches(id_list):  # IN lists of at most MAX_ROWS ids
            live = entities.c.body.is_not(None)
            rows += conn.execute(_select_entities.where(entities.c.id.in_(part), live)).all()
    return rows


def _live_version(current: Any) -> int:
    """The version a compare-and-set compares with: 0 for a missing or deleted entity."""
    return 0 if current is None or current[2] else int(current[1])


def _lost_insert_race(exc: SchemalessError) -> bool:
    """The first INSERT of an id lost to another's: the retry goes on as an update."""
    cause = exc.__cause__
    if isinstance(cause, sa.exc.IntegrityError) and "UNIQUE" in str(cause.orig):
        return True  # SQLite's unique violation
    return dialect.error_code(cause) == _DUPLICATE_KEY
