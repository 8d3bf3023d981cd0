from blog import views
from django.urls import path

urlpatterns = [
    path("", views.EntryList.as_view(), name="entries"),
    path("users/<int:user_id>/", views.UserEntries.as_view(), name="user-entries"),
    path("entries/<uuid:pk>/", views.EntryDetail.as_view(), name="entry"),
]
