"""The Django app of schemaless: its management commands (``schemaless_indexer`` and others)."""

from __future__ import annotations

from django.apps import AppConfig


class SchemalessConfig(AppConfig):
    """``INSTALLED_APPS += ["schemaless.django"]``; its label is ``schemaless``."""

    name = "schemaless.django"
    label = "schemaless"
    verbose_name = "schemaless"
    default_auto_field = "django.db.models.BigAutoField"
