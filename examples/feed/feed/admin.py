from django.contrib import admin

from .models import Comment, Entry, Like


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "published"]
    search_fields = ["user__exact"]  # an exact match on an index's leading field
    ordering = ["-published"]
    date_hierarchy = "published"  # Min/Max and datetimes() through feed_entry_published


@admin.register(Like)
class LikeAdmin(admin.ModelAdmin):
    list_display = ["user", "entry", "created"]  # the admin select_related()s the entries


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["user", "entry", "body", "created"]
