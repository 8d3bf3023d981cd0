"""The stored placement: schemaless_shard_map, schemaless_shard, schemaless_kinds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL = ("mysql", "mariadb")
OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}


def _timestamp():
    return sa.DateTime().with_variant(mysql.TIMESTAMP(fsp=6), *MYSQL)


def upgrade() -> None:
    op.create_table(
        "schemaless_shard_map",
        sa.Column("shard_group", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("owners", sa.Text(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        **OPTIONS,
    )
    op.create_table(
        "schemaless_shard",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created", _timestamp(), nullable=False),
        **OPTIONS,
    )
    op.create_table(
        "schemaless_kinds",
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("shard_group", sa.String(64), nullable=False),
        sa.Column("colocate_on", sa.String(64), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("schemaless_kinds")
    op.drop_table("schemaless_shard")
    op.drop_table("schemaless_shard_map")
