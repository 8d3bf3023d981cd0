"""``manage.py schemaless_backfill``: ``schemaless backfill`` on a schemaless alias."""

from __future__ import annotations

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    name = "backfill"
