"""``manage.py schemaless_status``: ``schemaless status`` on a schemaless alias."""

from __future__ import annotations

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    name = "status"
