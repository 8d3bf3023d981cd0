"""Store errors as Django code expects them, mapped at the one place the backend calls the store.

``IndexRequired`` stays ``schemaless.IndexRequired`` and is a Django ``FieldError`` too (a query
no index serves is a mistake in the query, as Django's FieldError is); ``Conflict`` (an
explicit compare-and-set) stays itself; a server that cannot be reached is Django's
``OperationalError``, a body that cannot be stored a ``DataError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import django.db
from django.core.exceptions import FieldError

import schemaless


class IndexRequired(schemaless.IndexRequired, FieldError):
    """No index serves this query (or past MAX_EXAMINED entities were examined for it)."""


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    """Run store calls, raising what Django code expects for the store's errors."""
    try:
        yield
    except (schemaless.Conflict, schemaless.InvalidQuery, schemaless.IndexNotReady):
        raise
    except IndexRequired:
        raise
    except schemaless.IndexRequired as exc:
        raise IndexRequired(str(exc)) from exc
    except schemaless.ShardUnavailable as exc:
        raise django.db.OperationalError(str(exc)) from exc
    except (schemaless.EncodeError, schemaless.EntityTooLarge) as exc:
        raise django.db.DataError(str(exc)) from exc
    except schemaless.ConfigurationError as exc:
        raise django.db.OperationalError(str(exc)) from exc
    except schemaless.SchemalessError as exc:
        raise django.db.DatabaseError(str(exc)) from exc
