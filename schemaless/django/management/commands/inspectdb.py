"""``manage.py inspectdb``: Django's, refusing a schemaless alias with a sentence, not models.

Django's inspectdb reads a database's columns to write models. A schemaless store has no
columns to read: every kind's fields live in serialized bodies, and its tables (entities, the
change log, index tables) are the store's own. So for a schemaless alias it says so and stops
(``CommandError``, exit status 1); every other alias gets Django's inspectdb unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.management import CommandError
from django.core.management.commands import inspectdb
from django.db import connections

from ...backends.base import StoreWrapper


class Command(inspectdb.Command):
    def handle(self, **options: Any) -> None:
        alias = options["database"]
        if isinstance(connections[alias], StoreWrapper):
            raise CommandError(
                f"inspectdb cannot describe database {alias!r}: it is a schemaless store, whose "
                "fields live in serialized entity bodies, not in columns. Write the models as "
                "subclasses of schemaless.django.models.Model; `manage.py migrate` then adds "
                "their indexes."
            )
        super().handle(**options)
