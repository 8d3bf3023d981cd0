"""entity_failures: what the indexer set aside, with its error.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MYSQL = ("mysql", "mariadb")
OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mariadb_engine": "InnoDB"}


def _binary16():
    return sa.LargeBinary(16).with_variant(mysql.BINARY(16), *MYSQL)


def _timestamp():
    return sa.DateTime().with_variant(mysql.TIMESTAMP(fsp=6), *MYSQL)


def upgrade() -> None:
    op.create_table(
        "entity_failures",
        sa.Column("entity_id", _binary16(), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("first_seen", _timestamp(), nullable=False),
        sa.Column("last_seen", _timestamp(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("entity_failures")
