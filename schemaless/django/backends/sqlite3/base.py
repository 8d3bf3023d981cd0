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
