"""Fields of schemaless models: Django's own field classes, taught to live in an entity body.

Each field subclasses the Django field of the same name, so options (``default``, ``null``,
``blank``, ``choices``, ``validators``, ``max_length``, ``verbose_name``, ``help_text``,
``editable``), ``full_clean()`` messages and ``formfield()`` are Django's, unchanged. What a
field adds is the way to and from the body (``to_body`` / ``from_body``) and the index type it
maps onto (``index_type``; None for a field no index can hold). There is no column, so options
that only a table could enforce (``unique``, ``db_index``, ``primary_key`` ...) raise
``NotSupportedError`` rather than being ignored.

    >>> tags = sl.ListField(sl.CharField(max_length=40), default=list, blank=True)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core import validators
from django.core.exceptions import ValidationError
from django.db import NotSupportedError
from django.db import models as dj
from django.utils import timezone
from django.utils.functional import cached_property

INT64 = (-(2**63), 2**63 - 1)
# Options that need a table or a column to mean anything.
UNSUPPORTED_OPTIONS = (
    "primary_key",
    "unique",
    "db_index",
    "db_column",
    "db_default",
    "db_tablespace",
    "db_comment",
    "db_collation",
    "unique_for_date",
    "unique_for_month",
    "unique_for_year",
)


class BodyField:
    """What every schemaless field adds to its Django field class."""

    index_type: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        implicit = kwargs.pop("_implicit", False)
        given = sorted(k for k in UNSUPPORTED_OPTIONS if kwargs.get(k))
        if given and not implicit:
            raise NotSupportedError(
                f"{type(self).__name__}({', '.join(given)}=...): entities have no columns to "
                "enforce this; declare indexes in Meta.indexes"
            )
        super().__init__(*args, **kwargs)

    def to_body(self, value: Any) -> Any:
        """The value as the body stores it (Django's get_prep_value, which converts types)."""
        return self.get_prep_value(value)  # type: ignore[attr-defined]

    def from_body(self, value: Any) -> Any:
        """The Python value of what the body holds; bodies hold Python types already."""
        return value

    @cached_property
    def _get_default(self) -> Any:
        # Django's asks the default database connection whether '' means NULL; a body never does.
        if self.has_default():  # type: ignore[attr-defined]
            default = self.default  # type: ignore[attr-defined]
            return default if callable(default) else lambda: default
        if not self.empty_strings_allowed or self.null:  # type: ignore[attr-defined]
            return lambda: None
        return str


class IntegerField(BodyField, dj.IntegerField):
    """A 64-bit integer, as bodies and ``int`` index columns hold it."""

    index_type = "int"

    @cached_property
    def validators(self) -> list[Any]:
        # Django's ask the default database for its column range; a body holds 64 bits.
        low, high = INT64
        return [
            *self.default_validators,
            *self._validators,
            validators.MinValueValidator(low),
            validators.MaxValueValidator(high),
        ]


class FloatField(BodyField, dj.FloatField):
    index_type = "float"


class BooleanField(BodyField, dj.BooleanField):
    index_type = "bool"


class CharField(BodyField, dj.CharField):
    """A string; an index holds at most 255 characters of it (longer ones are left out)."""

    index_type = "str"


class TextField(BodyField, dj.TextField):
    index_type = "str"


class BinaryField(BodyField, dj.BinaryField):
    index_type = "bytes"

    def to_body(self, value: Any) -> Any:
        return None if value is None else bytes(value)


class UUIDField(BodyField, dj.UUIDField):
    index_type = "uuid"

    def from_body(self, value: Any) -> Any:
        return value if value is None else _lenient(self, value)


class DecimalField(BodyField, dj.DecimalField):
    """A Decimal, stored exactly; no index type holds it (a float would round)."""

    def from_body(self, value: Any) -> Any:
        return value if value is None else _lenient(self, value)


class DateField(BodyField, dj.DateField):
    """A date; no index type holds a bare date (index a DateTimeField instead)."""

    def from_body(self, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.date()
        return value if value is None else _lenient(self, value)


class DateTimeField(BodyField, dj.DateTimeField):
    """A datetime: aware (read back in UTC) when ``USE_TZ``, naive local time otherwise."""

    index_type = "datetime"

    def to_body(self, value: Any) -> Any:
        value = self.get_prep_value(value)
        if value is not None and not settings.USE_TZ and timezone.is_aware(value):
            value = timezone.make_naive(value)
        return value

    def from_body(self, value: Any) -> Any:
        if not isinstance(value, dt.datetime):
            return value if value is None else _lenient(self, value)
        if not settings.USE_TZ:
            return timezone.make_naive(value) if timezone.is_aware(value) else value
        if timezone.is_naive(value):
            return value.replace(tzinfo=dt.timezone.utc)  # indexes take naive as UTC, too
        return value.astimezone(dt.timezone.utc)


class JSONField(BodyField, dj.JSONField):
    """Any JSON value, stored as itself in the body (not as a JSON string)."""


class DictField(JSONField):
    """A JSON object: a dict, or None when ``null=True``."""

    default_error_messages = {"not_dict": "Value must be a dict."}

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        if value is not None and not isinstance(value, dict):
            raise ValidationError(self.error_messages["not_dict"], code="not_dict")


class ListField(BodyField, dj.Field):
    """A list of ``base_field`` values; an index on it gets one row per element.

    A filter on it holds when any element matches (``filter(tags="a")``), as the store's
    multi-valued indexes answer it. No form field is offered (ModelForms leave it out).
    """

    empty_strings_allowed = False
    default_error_messages = {
        "item_invalid": "Item %(nth)s in the list did not validate:",
        "not_list": "Value must be a list.",
    }

    def __init__(self, base_field: BodyField, **kwargs: Any) -> None:
        if not isinstance(base_field, BodyField) or isinstance(base_field, ListField):
            raise TypeError("ListField takes one schemaless field (not a list) for its items")
        self.base_field = base_field
        super().__init__(**kwargs)

    @property
    def index_type(self) -> str | None:  # type: ignore[override]
        return self.base_field.index_type

    def set_attributes_from_name(self, name: str) -> None:
        super().set_attributes_from_name(name)
        self.base_field.set_attributes_from_name(name)  # type: ignore[attr-defined]

    def get_internal_type(self) -> str:
        return "ListField"

    def formfield(self, **kwargs: Any) -> None:
        return None

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError(self.error_messages["not_list"], code="not_list") from None
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise ValidationError(self.error_messages["not_list"], code="not_list")
        return self._each("to_python", list(value))

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        if value is not None:
            self._each("validate", value, model_instance)

    def run_validators(self, value: Any) -> None:
        super().run_validators(value)
        if value is not None:
            self._each("run_validators", value)

    def to_body(self, value: Any) -> Any:
        if value is None:
            return None
        return [self.base_field.to_body(item) for item in value]

    def from_body(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [self.base_field.from_body(item) for item in value]

    def _each(self, method: str, items: list[Any], *args: Any) -> list[Any]:
        """Apply a base-field method to every item, naming the item that fails (ArrayField)."""
        done = []
        for nth, item in enumerate(items, start=1):
            try:
                result = getattr(self.base_field, method)(item, *args)
            except ValidationError as exc:
                raise ValidationError(
                    [_prefixed(self.error_messages["item_invalid"], nth, e) for e in exc.error_list]
                ) from None
            done.append(item if result is None else result)
        return done


def id_field() -> UUIDField:
    """The implicit ``id``: a UUID primary key, None until the first save assigns one."""
    return UUIDField(primary_key=True, editable=False, _implicit=True)


def _lenient(field: Any, value: Any) -> Any:
    """A value another writer stored in a looser type, converted when possible, else as is."""
    try:
        return field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return value


def _prefixed(prefix: str, nth: int, error: ValidationError) -> ValidationError:
    message = error.message % error.params if error.params else error.message
    return ValidationError(
        f"{prefix % {'nth': nth}} {message}", code="item_invalid", params={"nth": nth}
    )
