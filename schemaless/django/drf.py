"""Django REST framework: the store errors a view cannot help, as HTTP answers.

``IndexRequired`` (a filter no index serves: the client asked for a query the API does not
offer) is a 400, ``Conflict`` (a compare-and-set lost to a newer version) a 409; everything else
is DRF's own handling::

    REST_FRAMEWORK = {"EXCEPTION_HANDLER": "schemaless.django.drf.exception_handler"}
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, views
from rest_framework.response import Response

import schemaless


class IndexRequired(exceptions.APIException):
    status_code = 400
    default_detail = "No index serves this query."
    default_code = "index_required"


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The object was changed meanwhile; reload it and try again."
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``exception_handler``, with ``IndexRequired`` a 400 and ``Conflict`` a 409."""
    if isinstance(exc, schemaless.IndexRequired):
        exc = IndexRequired(str(exc))
    elif isinstance(exc, schemaless.Conflict):
        exc = Conflict(str(exc))
    return views.exception_handler(exc, context)
