"""The schemaless Django database backends: ``schemaless.django.backends.sqlite3`` and ``.mysql``.

A ``DATABASES`` alias whose ENGINE is one of these holds schemaless entities: Django's own
Model, QuerySet, forms and migrations run on it, and the backend's compilers and schema editor
translate what Django asks for into store operations (see ``docs/django-backend.md``).

    DATABASES = {
        "default": {...},
        "entities": {"ENGINE": "schemaless.django.backends.sqlite3", "NAME": "entities.db",
                     "OPTIONS": {"INDEXING": "sync", "MAX_EXAMINED": 10_000}},
    }
"""
