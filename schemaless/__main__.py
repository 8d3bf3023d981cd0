"""``python -m schemaless``: the same as the ``schemaless`` command."""

import sys

from .cli import main

sys.exit(main())
