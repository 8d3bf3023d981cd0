"""The test app: a schemaless Entry on the store alias, and PlainEntry, its twin on a table."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from schemaless.django import models as sl


class Entry(sl.Model):
    user_id = models.IntegerField()
    title = models.CharField(max_length=200)
    rank = models.IntegerField(null=True, blank=True)
    price = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    tags = sl.ListField(models.CharField(max_length=40), default=list, blank=True)
    extra = sl.DictField(default=dict, blank=True)
    published = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            sl.Index(fields=["user_id", "-published"], name="entry_user_pub", shard_on="user_id"),
            sl.Index(fields=["tags"], name="entry_tags"),
            sl.Index(fields=["title"], name="entry_title"),
            sl.Index(fields=["rank"], name="entry_rank"),  # added by migration 0002
        ]

    def __str__(self) -> str:
        return self.title


class PlainEntry(models.Model):
    """Entry's twin as an ordinary Django model on an ordinary table: the reference."""

    user_id = models.IntegerField()
    title = models.CharField(max_length=200)
    rank = models.IntegerField(null=True, blank=True)
    price = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    published = models.DateTimeField(default=timezone.now)


class Slot(sl.Model):
    """Field types a body holds but no index serves: a time of day and a duration."""

    starts = models.TimeField()
    lasts = models.DurationField(null=True)


class Shelf(sl.Model):
    """Where a Book stands: a nullable relation, and a second level of select_related."""

    label = models.CharField(max_length=40)
    room = models.ForeignKey(Slot, null=True, on_delete=models.SET_NULL)


class Book(sl.Model):
    title = models.CharField(max_length=100)
    shelf = models.ForeignKey(Shelf, null=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [sl.Index(fields=["title"], name="book_title")]
