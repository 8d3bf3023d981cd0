"""What a models module imports: ``from schemaless.django import models as sl``.

class Entry(sl.Model):
    user_id = sl.IntegerField()
    title = sl.CharField(max_length=200)
    tags = sl.ListField(sl.CharField(max_length=40), default=list, blank=True)
    published = sl.DateTimeField(default=timezone.now)

    class Meta:
        kind = "entry"
        indexes = [sl.Index(fields=["user_id", "-published"], shard_on="user_id")]
"""

from django.db.models import Q

from .base import Model
from .fields import (
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    DictField,
    FloatField,
    IntegerField,
    JSONField,
    ListField,
    TextField,
    UUIDField,
)
from .indexes import Index
from .manager import BaseManager, Manager
from .queryset import QuerySet

__all__ = [
    "BaseManager",
    "BinaryField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DictField",
    "FloatField",
    "Index",
    "IntegerField",
    "JSONField",
    "ListField",
    "Manager",
    "Model",
    "Q",
    "QuerySet",
    "TextField",
    "UUIDField",
]
