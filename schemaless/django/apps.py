"""The Django app of schemaless: system checks, and a fresh store when settings change."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class SchemalessConfig(AppConfig):
    """``INSTALLED_APPS += ["schemaless.django"]``; its label is ``schemaless``."""

    name = "schemaless.django"
    label = "schemaless"
    verbose_name = "schemaless"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
        from .conf import on_setting_changed

        setting_changed.connect(on_setting_changed, dispatch_uid="schemaless.reset_store")
