"""Running the alembic migrations of the fixed tables, from a checkout or an installed wheel.

The script directory ``migrations/`` is shipped beside the ``schemaless`` package (a top-level
folder in the wheel, as in the checkout), so it is found relative to this file. alembic keeps its
version in ``schemaless_alembic_version``, never in the application's own ``alembic_version``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from .errors import ConfigurationError

VERSION_TABLE = "schemaless_alembic_version"


def script_location() -> Path:
    path = Path(__file__).resolve().parent.parent / "migrations"
    if not (path / "env.py").is_file():
        raise ConfigurationError(f"the migrations folder is missing at {path}")
    return path


def upgrade(conn: Connection, revision: str = "head") -> None:
    """alembic upgrade on one shard's connection, in its transaction; again changes nothing."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
