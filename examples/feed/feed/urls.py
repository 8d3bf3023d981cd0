from django.urls import path

from . import views

app_name = "feed"
urlpatterns = [
    path("", views.home, name="home"),
    path("u/<str:user>/", views.user_feed, name="user"),
    path("t/<str:tag>/", views.tag, name="tag"),
    path("e/<uuid:pk>/", views.entry, name="entry"),
    path("e/<uuid:pk>/like/", views.like, name="like"),
    path("e/<uuid:pk>/comment/", views.comment, name="comment"),
]
