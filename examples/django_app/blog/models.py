from django.utils import timezone

from schemaless.django import models as sl


class Entry(sl.Model):
    user_id = sl.IntegerField()
    title = sl.CharField(max_length=200)
    tags = sl.ListField(sl.CharField(max_length=40), default=list, blank=True)
    published = sl.DateTimeField(default=timezone.now)

    class Meta:
        kind = "entry"
        indexes = [
            sl.Index(fields=["user_id", "-published"], shard_on="user_id", name="entry_user_pub"),
            sl.Index(fields=["-published"], name="entry_published"),
            sl.Index(fields=["tags"], name="entry_tags"),
        ]

    def __str__(self) -> str:
        return self.title
