"""The fixed tables every shard holds, as SQLAlchemy Core MetaData.

``entities`` keeps every body as one blob, so a new field needs no DDL. ``entity_changes`` is the
change log (outbox) written in the same transaction as each entity write and drained by the
indexer. ``schemaless_indexes`` is the registry of secondary indexes. ``entity_failures`` holds
what the indexer set aside (poison it could not apply). The alembic migrations in
``migrations/`` create exactly these; a test compares the two.

Index tables are not fixed: :func:`index_table` builds the ``index_<name>`` table of one index.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from . import dialect

metadata = sa.MetaData()

_mysql: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mariadb_engine": "InnoDB",
}

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("added_id", dialect.bigint(), primary_key=True, autoincrement=True),
    sa.Column("id", dialect.binary16(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("updated", dialect.timestamp(), nullable=False),
    # NULL marks a deleted entity: the row keeps its version, so a later put of the same id
    # goes on counting instead of starting again at 1.
    sa.Column("body", dialect.blob(), nullable=True),
    sa.Index("uq_entities_id", "id", unique=True),
    sa.Index("ix_entities_updated", "updated"),
    sa.Index("ix_entities_kind_added", "kind", "added_id"),
    **_mysql,
)

entity_changes = sa.Table(
    "entity_changes",
    metadata,
    sa.Column("seq", dialect.bigint(), primary_key=True, autoincrement=True),
    sa.Column("entity_id", dialect.binary16(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("created", dialect.timestamp(), nullable=False),
    sa.Index("ix_entity_changes_entity", "entity_id"),
    **_mysql,
)

indexes = sa.Table(
    "schemaless_indexes",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created", dialect.timestamp(), nullable=False),
    sa.Column("updated", dialect.timestamp(), nullable=False),
    sa.Column("backfill_position", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("backfill_done", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("backfill_total", sa.BigInteger(), nullable=False, server_default="0"),
    **_mysql,
)

# Entities set aside by the indexer: applying their change failed for a reason that trying
# again will not cure (a body that cannot be decoded, a value the server refuses), so the
# change row was traded for this one and the rest of its batch went on. One row per entity,
# on the entity's shard; `schemaless indexer --retry-set-aside` turns them back into changes.
entity_failures = sa.Table(
    "entity_failures",
    metadata,
    sa.Column("entity_id", dialect.binary16(), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("first_seen", dialect.timestamp(), nullable=False),
    sa.Column("last_seen", dialect.timestamp(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
    **_mysql,
)

_FIELD_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "int": sa.BigInteger(),
    "float": sa.Double(),
    "str": dialect.text(255),
    "bytes": sa.LargeBinary(255).with_variant(sa.dialects.mysql.VARBINARY(255), *dialect.MYSQL),
    "bool": sa.Boolean(create_constraint=False),
    "datetime": sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), *dialect.MYSQL),
    "uuid": dialect.binary16(),
}

FIELD_TYPES = tuple(_FIELD_TYPES)


def index_table(
    name: str,
    fields: dict[str, str],
    metadata: sa.MetaData | None = None,
    descending: Collection[str] = (),
) -> sa.Table:
    """The ``index_<name>`` table: one nullable column per field, then entity_id, version and
    entity_row.

    Fields may hold NULL, so they cannot be in a primary key; ``entity_row`` numbers an
    entity's rows instead (0, 1, ... per element of a list field) and ``(entity_id,
    entity_row)`` is the primary key that Galera and Vitess require. It also serves the
    replace-by-entity of every indexer apply (InnoDB clusters the rows by it), and makes a
    second copy of an entity's rows a duplicate-key error rather than a silent double. The
    query key leads with the fields in order, the ``descending`` ones stored descending, then
    entity_id in the last field's direction (queries order by the key then entity_id).
    """
    columns = [
        sa.Column(field, _FIELD_TYPES[kind], nullable=True) for field, kind in fields.items()
    ]
    table = sa.Table(
        f"index_{name}",
        metadata if metadata is not None else sa.MetaData(),
        *columns,
        sa.Column("entity_id", dialect.binary16(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("entity_row", sa.Integer(), nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("entity_id", "entity_row", name=f"pk_{name}"),
        **_mysql,
    )
    directed = [table.c[f].desc() if f in descending else table.c[f] for f in fields]
    entity_id = table.c.entity_id.desc() if list(fields)[-1] in descending else table.c.entity_id
    sa.Index(f"ix_{name}_query", *directed, entity_id)
    return table


# The placement of data (DESIGN 6, "The map is data"), a copy on every shard. One row per
# shard group: the group's number (carried in the ids it mints), the map's version and the
# owner of each of its 4096 buckets, as ranges ("s0:0-2047,s1:2048-4095"). One row per group
# makes a flip of the map one atomic UPDATE on each shard.
shard_map = sa.Table(
    "schemaless_shard_map",
    metadata,
    sa.Column("shard_group", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer(), nullable=False, autoincrement=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("owners", sa.Text(), nullable=False),
    sa.Column("updated", dialect.timestamp(), nullable=False),
    **_mysql,
)

# This shard's own name, written by the first migrate: a shard listed under another name (a
# list of URLs in another order) is refused instead of being handed another shard's buckets.
shard_identity = sa.Table(
    "schemaless_shard",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created", dialect.timestamp(), nullable=False),
    **_mysql,
)

# Kinds declared with Store.define_kind: the group their entities live in, and the field whose
# value's bucket their new ids are minted in (colocation).
kinds = sa.Table(
    "schemaless_kinds",
    metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("shard_group", sa.String(64), nullable=False),
    sa.Column("colocate_on", sa.String(64), nullable=True),
    sa.Column("created", dialect.timestamp(), nullable=False),
    **_mysql,
)

# Each shard's fence (DESIGN 6, "Moving buckets online"): per shard group number (0-15, every
# row present from migration 0004 on), the buckets whose writes this shard refuses because
# they moved away or are being moved: '1' at position bucket + 1 of ``refused`` ('' refuses
# none). Every write reads its group's row FOR SHARE in its own transaction (fused into the
# change-row INSERT, so no extra round trip): a move's freeze, an UPDATE of the row, waits for
# the writes under way and refuses the later ones, on the server itself (see fence.py).
fences = sa.Table(
    "schemaless_fence",
    metadata,
    sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("refused", sa.Text(), nullable=False),
    **_mysql,
)

# Bucket moves, started or done (schemaless.moves): one row per move, on its source and its
# target shard, so that a killed move is found and resumed (or rolled back) when run again.
moves = sa.Table(
    "schemaless_moves",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("shard_group", sa.String(64), nullable=False),
    sa.Column("buckets", sa.Text(), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("position", dialect.binary16(), nullable=True),
    sa.Column("copied", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("total", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("watermark", dialect.timestamp(), nullable=True),
    sa.Column("frozen_ms", sa.Float(), nullable=True),
    sa.Column("started", dialect.timestamp(), nullable=False),
    sa.Column("updated", dialect.timestamp(), nullable=False),
    **_mysql,
)
