"""Running the alembic migrations of the fixed tables, from a checkout or an installed wheel.

The script directory is the checkout's top-level ``migrations/``, which the wheel installs beside
the ``schemaless`` package as ``schemaless_migrations/`` (site-packages gains no name but
``schemaless*``: see pyproject.toml), so it is found relative to this file, under either name.
alembic keeps its version in ``schemaless_alembic_version``, never in the application's own
``alembic_version``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from .errors import ConfigurationError

VERSION_TABLE = "schemaless_alembic_version"


def script_location() -> Path:
    """The alembic script directory: installed from a wheel, else in the checkout."""
    root = Path(__file__).resolve().parent.parent
    for path in (root / "schemaless_migrations", root / "migrations"):
        if (path / "env.py").is_file():
            return path
    raise ConfigurationError(f"the migrations folder is missing at {root / 'migrations'}")


def upgrade(conn: Connection, revision: str = "head") -> None:
    """alembic upgrade on one shard's connection, in its transaction; again changes nothing."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
