"""The test app's models: an entry with indexes, an author with every scalar field, a note."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from schemaless.django import models as sl


class EntryQuerySet(sl.QuerySet):
    def by_user(self, user_id: int) -> EntryQuerySet:
        return self.filter(user_id=user_id)


class PublicManager(sl.Manager):
    """Published entries only: served by the partial index entry_public."""

    def get_queryset(self) -> sl.QuerySet:
        return super().get_queryset().filter(status="published")


class Entry(sl.Model):
    user_id = sl.IntegerField()
    title = sl.CharField(max_length=200)
    body = sl.TextField(blank=True)
    tags = sl.ListField(sl.CharField(max_length=40), default=list, blank=True)
    published = sl.DateTimeField(default=timezone.now)
    status = sl.CharField(
        max_length=10,
        choices=[("draft", "Draft"), ("published", "Published")],
        default="published",
    )
    rating = sl.FloatField(null=True, blank=True)

    objects = EntryQuerySet.as_manager()
    public = PublicManager()

    class Meta:
        kind = "entry"
        get_latest_by = "published"
        indexes = [
            sl.Index(fields=["user_id", "-published"], shard_on="user_id", name="entry_user_pub"),
            sl.Index(fields=["tags"], name="entry_tags"),
            sl.Index(fields=["published"], name="entry_published"),
            sl.Index(fields=["user_id"], where={"status": "published"}, name="entry_public"),
        ]


class Author(sl.Model):
    name = sl.CharField(max_length=100)
    email = sl.CharField(max_length=200, blank=True)
    joined = sl.DateField(null=True, blank=True)
    karma = sl.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    token = sl.UUIDField(null=True, blank=True)
    avatar = sl.BinaryField(null=True, blank=True)
    active = sl.BooleanField(default=True)
    prefs = sl.DictField(default=dict, blank=True)
    extra = sl.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [sl.Index(fields=["name"])]


class Timestamped(sl.Model):
    created = sl.DateTimeField(auto_now_add=True)
    updated = sl.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Note(Timestamped):
    """No Meta.indexes: its filters raise IndexRequired."""

    x = sl.IntegerField(default=0)
    text = sl.TextField(blank=True)
