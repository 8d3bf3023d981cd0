"""The feed: users post entries with tags; others like and comment on them.

Each model is a kind of schemaless entities. Its indexes are the queries the pages make: a
user's entries newest first (placed by user, so a feed page reads one shard), a tag's entries,
the newest entries overall, and an entry's likes and comments.
"""

from django.db import models
from django.utils import timezone

from schemaless.django import models as sl


class Entry(sl.Model):
    user = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    tags = sl.ListField(models.CharField(max_length=40), default=list, blank=True)
    published = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "entries"
        indexes = [
            sl.Index(fields=["user", "-published"], name="feed_entry_user", shard_on="user"),
            sl.Index(fields=["tags", "-published"], name="feed_entry_tag"),
            sl.Index(fields=["-published"], name="feed_entry_published"),
        ]

    def __str__(self) -> str:
        return self.title


class Like(sl.Model):
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="likes")
    user = models.CharField(max_length=40)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [sl.Index(fields=["entry", "created"], name="feed_like_entry")]

    def __str__(self) -> str:
        return f"{self.user} likes {self.entry_id}"


class Comment(sl.Model):
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="comments")
    user = models.CharField(max_length=40)
    body = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [sl.Index(fields=["entry", "created"], name="feed_comment_entry")]

    def __str__(self) -> str:
        return f"{self.user}: {self.body[:40]}"
