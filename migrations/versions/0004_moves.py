"""Bucket moves: schemaless_fence (every group's row), schemaless_moves.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MYSQL = ("mysql", "mariadb")
OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}
GROUPS = 16  # bucket_map.MAX_GROUPS: a fence row for every group number there can be


def _binary16():
    return sa.LargeBinary(16).with_variant(mysql.BINARY(16), *MYSQL)


def _timestamp():
    return sa.DateTime().with_variant(mysql.TIMESTAMP(fsp=6), *MYSQL)


def upgrade() -> None:
    fence = op.create_table(
        "schemaless_fence",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("refused", sa.Text(), nullable=False),
        **OPTIONS,
    )
    # Every row exists before any write looks for it: a write locks its group's row, and a
    # row made later would not have been locked by the writes already under way.
    op.bulk_insert(fence, [{"number": n, "refused": ""} for n in range(GROUPS)])
    op.create_table(
        "schemaless_moves",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("shard_group", sa.String(64), nullable=False),
        sa.Column("buckets", sa.Text(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("position", _binary16(), nullable=True),
        sa.Column("copied", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("watermark", _timestamp(), nullable=True),
        sa.Column("frozen_ms", sa.Float(), nullable=True),
        sa.Column("started", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("schemaless_moves")
    op.drop_table("schemaless_fence")
