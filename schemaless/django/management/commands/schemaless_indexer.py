"""``manage.py schemaless_indexer``: ``schemaless indexer`` on a schemaless alias."""

from __future__ import annotations

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    name = "indexer"
