#!/usr/bin/env python
"""The feed example: a small FriendFeed-like site on schemaless models, zero set-up on SQLite.

$ python examples/feed/manage.py migrate      # Django's tables and the store's, two files
$ python examples/feed/manage.py runserver    # http://127.0.0.1:8000/
$ python examples/feed/manage.py createsuperuser   # then /admin/
"""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parents[1])]  # this site, and the checkout's schemaless
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
