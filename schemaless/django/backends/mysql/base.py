"""The schemaless backend on MySQL and MariaDB: Django's mysql backend holding a store."""

from __future__ import annotations

from django.db.backends.mysql import base, features, operations, schema

from .. import base as schemaless
from ..schema import SchemaEditor


class DatabaseFeatures(schemaless.Features, features.DatabaseFeatures):
    pass


class DatabaseOperations(schemaless.Operations, operations.DatabaseOperations):
    compiler_module = "schemaless.django.backends.mysql.compiler"


class DatabaseSchemaEditor(SchemaEditor, schema.DatabaseSchemaEditor):
    pass


class DatabaseWrapper(schemaless.StoreWrapper, base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations
    SchemaEditorClass = DatabaseSchemaEditor

    def init_connection_state(self) -> None:
        """Django's, and UTC for the session: the store's TIMESTAMP columns hold UTC."""
        super().init_connection_state()
        with self.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")
