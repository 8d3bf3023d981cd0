"""Django settings of the backend's tests: Django's tables on "default", entities on "entities".

The "entities" alias is pointed at a fresh database by each test (see conftest.py). The apps are
the ones a Django project would have (the admin, auth, sessions, DRF, django-filter), the test
app ``shop`` and the example site ``feed`` (examples/feed, put on sys.path by conftest.py).
"""

SECRET_KEY = "schemaless-backend-tests"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_filters",
    "schemaless.django",
    "tests.django.shop",
    "feed",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
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
ROOT_URLCONF = "tests.django.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "entities": {
        "ENGINE": "schemaless.django.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"INDEXING": "sync"},
    },
}
DATABASE_ROUTERS = ["schemaless.django.Router"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for tests only
LOGGING_CONFIG = None
REST_FRAMEWORK = {"EXCEPTION_HANDLER": "schemaless.django.drf.exception_handler"}
