"""Django settings of the backend's tests: Django's tables on "default", entities on "entities".

The "entities" alias is pointed at a fresh database by each test (see conftest.py).
"""

SECRET_KEY = "schemaless-backend-tests"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "tests.django_backend.shop"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "entities": {
        "ENGINE": "schemaless.django.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"INDEXING": "sync"},
    },
}
DATABASE_ROUTERS = ["schemaless.django.backends.router.Router"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
