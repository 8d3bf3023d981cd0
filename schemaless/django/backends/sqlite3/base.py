"""The schemaless backend on SQLite: Django's sqlite3 backend holding a schemaless store."""

from __future__ import annotations

from django.db.backends.sqlite3 import base, features, operations, schema

from .. import base as schemaless
from ..schema import SchemaEditor


class DatabaseFeatures(schemaless.Features, features.DatabaseFeatures):
    pass


class DatabaseOperations(schemaless.Operations, operations.DatabaseOperations):
    compiler_module = "schemaless.django.backends.sqlite3.compiler"


class DatabaseSchemaEditor(SchemaEditor, schema.DatabaseSchemaEditor):
    pass


class DatabaseWrapper(schemaless.StoreWrapper, base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations
    SchemaEditorClass = DatabaseSchemaEditor

    def get_connection_params(self) -> dict:
        """Django's, with transactions ``BEGIN IMMEDIATE`` unless OPTIONS says otherwise: a
        store write reads the version it compares and sets before it writes, and a deferred
        transaction that then asks for the write lock fails at once ("database is locked")
        where an immediate one waits its turn, as Django's docs advise for concurrent writers."""
        params: dict = super().get_connection_params()
        if "transaction_mode" not in self.settings_dict["OPTIONS"]:
            self.transaction_mode = "IMMEDIATE"
        return params
