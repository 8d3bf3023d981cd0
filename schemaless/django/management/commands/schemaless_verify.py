"""``manage.py schemaless_verify``: ``schemaless verify`` on a schemaless alias."""

from __future__ import annotations

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    name = "verify"
