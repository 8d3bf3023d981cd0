"""The fixed tables: entities, entity_changes, schemaless_indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = ("mysql", "mariadb")
OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}


def _bigint():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _binary16():
    return sa.LargeBinary(16).with_variant(mysql.BINARY(16), *MYSQL)


def _timestamp():
    return sa.DateTime().with_variant(mysql.TIMESTAMP(fsp=6), *MYSQL)


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("added_id", _bigint(), primary_key=True, autoincrement=True),
        sa.Column("id", _binary16(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.Column("body", sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), *MYSQL)),
        **OPTIONS,
    )
    op.create_index("uq_entities_id", "entities", ["id"], unique=True)
    op.create_index("ix_entities_updated", "entities", ["updated"])
    op.create_index("ix_entities_kind_added", "entities", ["kind", "added_id"])
    op.create_table(
        "entity_changes",
        sa.Column("seq", _bigint(), primary_key=True, autoincrement=True),
        sa.Column("entity_id", _binary16(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        **OPTIONS,
    )
    op.create_index("ix_entity_changes_entity", "entity_changes", ["entity_id"])
    op.create_table(
        "schemaless_indexes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.Column("backfill_position", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("backfill_done", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("backfill_total", sa.BigInteger(), nullable=False, server_default="0"),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("schemaless_indexes")
    op.drop_table("entity_changes")
    op.drop_table("entities")
