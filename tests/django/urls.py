"""The test project's URLs: the feed site, the admin, and a DRF API (see test_drf.py)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("tests.django.api")),
    path("", include("feed.urls")),
]
