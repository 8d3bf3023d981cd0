"""A DRF API over the feed's entries, written as DRF's tutorial writes one: a ModelSerializer,
ModelViewSets with a class-level ``queryset``, pagination and django-filter (see test_drf.py)."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from django_filters.rest_framework import DjangoFilterBackend
from feed.models import Entry
from rest_framework import pagination, routers, serializers, viewsets


class EntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Entry
        fields = ["id", "version", "user", "title", "tags", "published"]


class Pages(pagination.PageNumberPagination):
    page_size = 2


class Cursor(pagination.CursorPagination):
    page_size = 2
    ordering = "-published"


class EntryViewSet(viewsets.ModelViewSet):
    queryset = Entry.objects.order_by("-published")  # evaluated per request, as DRF promises
    serializer_class = EntrySerializer
    pagination_class = Pages
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["user", "title"]  # title has no index: a filter on it is a 400

    def perform_update(self, serializer: Any) -> None:
        """``If-Match: <version>`` makes the update a compare-and-set (a 409 when stale)."""
        expected = self.request.headers.get("If-Match")
        if expected is None:
            serializer.save()
            return
        for name, value in serializer.validated_data.items():
            setattr(serializer.instance, name, value)
        serializer.instance.save(expect_version=int(expected))


class TimelineViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Entry.objects.all()
    serializer_class = EntrySerializer
    pagination_class = Cursor


router = routers.DefaultRouter()
router.register("entries", EntryViewSet)
router.register("timeline", TimelineViewSet, basename="timeline")
urlpatterns = [path("", include(router.urls))]
