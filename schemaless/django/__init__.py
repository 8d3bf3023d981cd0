"""schemaless.django: schemaless models, managers and QuerySets for Django projects.

Add the app and name the databases that hold the shards::

    INSTALLED_APPS += ["schemaless.django"]
    SCHEMALESS = {"DATABASES": ["default"], "INDEXING": "async"}

then declare models with ``from schemaless.django import models as sl`` and run
``manage.py schemaless_migrate`` and ``manage.py schemaless_indexer``. Settings are read at first
use, never at import, so Django's test databases are followed.

    >>> from schemaless.django import get_store
    >>> get_store().pending_changes()
"""

from .conf import get_store, reset_store

__all__ = ["get_store", "reset_store"]
