"""Models for a schemaless alias: the abstract ``Model``, ``ListField``, ``DictField``, ``Index``.

Every class here is a plain Django class (a ``Model``, a ``Field``, an ``Index``), so Django's
admin, forms, serializers and migrations take them as they take their own::

    from django.db import models
    from schemaless.django import models as sl

    class Entry(sl.Model):              # the kind is the model's db_table
        user_id = models.IntegerField()
        tags = sl.ListField(models.CharField(max_length=40), default=list)
        published = models.DateTimeField()

        class Meta:
            indexes = [sl.Index(fields=["user_id", "-published"], name="entry_user_pub",
                                shard_on="user_id")]
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.core import checks, exceptions
from django.db import models

# The save() in progress that asked for a compare-and-set, and the version it wrote.
saving: contextvars.ContextVar[Saving | None] = contextvars.ContextVar("saving", default=None)


class Saving:
    """One ``save()``: the pk written, the version it expects (or None), the version written."""

    def __init__(self, pk: Any, expect_version: int | None) -> None:
        self.pk = pk
        self.expect_version = expect_version
        self.version: int | None = None


class LoadedVersion(int):
    """A version read from the store, with the entity it was read with (id and stored body).

    It is the int Django code sees as ``obj.version``; a ``save()`` of the instance merges its
    values into that body and writes with a compare-and-set on this version, so it skips
    reading the entity again (a version never repeats, so the body read at it is the stored
    one while the compare-and-set holds; when it fails, the save reads and merges anew).
    """

    entity_id: uuid.UUID
    body: dict[str, Any]

    @classmethod
    def of(cls, version: int, entity_id: uuid.UUID, body: dict[str, Any]) -> LoadedVersion:
        made = cls(version)
        made.entity_id, made.body = entity_id, body
        return made


class VersionField(models.BigIntegerField):
    """The stored version of an entity: read from the store, never written into the body."""

    db_returning = True  # an insert hands it back, as it hands back an AutoField's id

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", 0)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs


class Model(models.Model):
    """The abstract base of schemaless models: a UUID pk and the entity's ``version``.

    ``save(expect_version=obj.version)`` is a compare-and-set, raising ``schemaless.Conflict``
    when the stored entity moved on; a plain ``save()`` is Django's last write wins.
    """

    id: models.UUIDField[Any, uuid.UUID] = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False
    )
    version = VersionField()

    class Meta:
        abstract = True

    def save(self, *args: Any, expect_version: int | None = None, **kwargs: Any) -> None:
        with _saving(self.pk, expect_version) as current:
            super().save(*args, **kwargs)
        if current.version is not None:
            self.version = current.version


@contextlib.contextmanager
def _saving(pk: Any, expect_version: int | None) -> Iterator[Saving]:
    current = Saving(pk, expect_version)
    token = saving.set(current)
    try:
        yield current
    finally:
        saving.reset(token)


class ListField(models.Field):
    """A list of values of ``base_field``, stored as a list in the body.

    A filter on it holds when any element matches (``filter(tags="red")``); a form edits it as
    comma-separated values; serializers write it as a list.
    """

    empty_strings_allowed = False
    description = "A list"

    def __init__(self, base_field: models.Field | None = None, **kwargs: Any) -> None:
        self.base_field = base_field if base_field is not None else models.CharField()
        super().__init__(**kwargs)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.base_field.remote_field:
            errors.append(checks.Error("a ListField cannot hold relations", obj=self))
        return errors

    def set_attributes_from_name(self, name: str) -> None:
        super().set_attributes_from_name(name)
        self.base_field.set_attributes_from_name(name)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["base_field"] = self.base_field.clone()
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        return "ListField"

    def db_type(self, connection: Any) -> str:
        return "list"

    def get_prep_value(self, value: Any) -> Any:
        """A list element by element; a single value (a lookup's ``tags="red"``) as an element."""
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return [self.base_field.get_prep_value(v) for v in value]
        return self.base_field.get_prep_value(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value if value is None else list(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise exceptions.ValidationError(
                    "Enter a list.", code="invalid", params={"value": value}
                ) from None
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise exceptions.ValidationError("Enter a list.", code="invalid")
        return [self.base_field.to_python(v) for v in value]

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        for element in value or ():
            self.base_field.run_validators(element)
            self.base_field.validate(element, model_instance)

    def value_to_string(self, obj: Any) -> Any:
        return self.value_from_object(obj)  # a list, as serializers should write it

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(
            **{"form_class": ListFormField, "base_field": self.base_field.formfield(), **kwargs}
        )


class ListFormField(forms.Field):
    """A list edited as comma-separated values, each cleaned by the base field's form field."""

    def __init__(self, *, base_field: forms.Field | None = None, **kwargs: Any) -> None:
        self.base_field = base_field or forms.CharField()
        kwargs.pop("max_length", None)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(self.base_field.prepare_value(v)) for v in value)
        return value

    def to_python(self, value: Any) -> list[Any]:
        if isinstance(value, list | tuple):
            items = list(value)
        else:
            text = "" if value in self.empty_values else str(value).strip()
            items = [item.strip() for item in text.split(",")] if text else []
        return [self.base_field.clean(item) for item in items if item != ""]

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise exceptions.ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != list(initial or [])
        except exceptions.ValidationError:
            return True


class DictField(models.Field):
    """A dict with str keys, stored as a dict in the body; a form edits it as JSON."""

    empty_strings_allowed = False
    description = "A dict"

    def get_internal_type(self) -> str:
        return "DictField"

    def db_type(self, connection: Any) -> str:
        return "dict"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value if value is None else dict(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise exceptions.ValidationError("Enter a dict.", code="invalid") from None
        if value is not None and not isinstance(value, dict):
            raise exceptions.ValidationError("Enter a dict.", code="invalid")
        return value

    def value_to_string(self, obj: Any) -> Any:
        return self.value_from_object(obj)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})


class Index(models.Index):
    """A Django index that the schemaless schema editor makes a store index.

    ``shard_on`` names the field whose value places the index rows (a query pinning it by
    equality reads one shard); ``where`` (a dict of equalities) makes the index partial.
    """

    def __init__(
        self,
        *expressions: Any,
        shard_on: str | None = None,
        where: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.shard_on = shard_on
        self.where = dict(where or {})
        super().__init__(*expressions, **kwargs)

    def deconstruct(self) -> Any:
        path, args, kwargs = super().deconstruct()
        if self.shard_on is not None:
            kwargs["shard_on"] = self.shard_on
        if self.where:
            kwargs["where"] = self.where
        return path, args, kwargs
