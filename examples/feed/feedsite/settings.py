"""Settings of the feed site: Django's own tables in one SQLite file, the entities in another.

``FEED_DATA`` names the folder of the two files (default: this site's folder). Set
``"INDEXING": "async"`` and run ``manage.py schemaless_indexer`` for the production shape.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FEED_DATA", BASE_DIR))

SECRET_KEY = "feed-example-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "schemaless.django",
    "feed",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "feedsite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    # Django's own tables: users, sessions, the admin's log.
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "django.sqlite3"},
    # The feed's entries, likes and comments: schemaless entities.
    "entities": {
        "ENGINE": "schemaless.django.backends.sqlite3",
        "NAME": DATA / "entities.sqlite3",
        "OPTIONS": {"INDEXING": "sync"},
    },
}
DATABASE_ROUTERS = ["schemaless.django.Router"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
