"""The Django integration end to end: migrate, write, index, query, render pages.

$ cd examples/django_app && python demo.py
"""

import datetime as dt
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import django  # noqa: E402

django.setup()

from blog.models import Entry  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402


def main() -> None:
    call_command("schemaless_migrate")
    start = timezone.now()
    Entry.objects.bulk_create(
        Entry(
            user_id=n % 3,
            title=f"entry {n}",
            tags=[f"tag{n % 2}"],
            published=start - dt.timedelta(minutes=n),
        )
        for n in range(12)
    )
    call_command("schemaless_indexer", "--burst", verbosity=0)

    newest = Entry.objects.filter(user_id=1).order_by("-published")[:2]
    print("user 1, newest two:", [e.title for e in newest])
    print("tagged tag0:", Entry.objects.filter(tags="tag0").count())
    entry = Entry.objects.get(pk=newest[0].pk)
    entry.title += " (edited)"
    entry.save()  # compare-and-set on the version read

    client = Client()
    page = client.get("/?page=2")
    print("GET /?page=2 ->", page.status_code, page.content.decode().count("<li>"), "entries")
    detail = client.get(f"/entries/{entry.pk}/")
    print("GET /entries/<pk>/ ->", detail.status_code, detail.content.decode().strip())
    call_command("schemaless_status")


if __name__ == "__main__":
    main()
