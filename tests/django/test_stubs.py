"""django-stubs' mypy plugin type-checks a module of schemaless models and code using them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.django.conftest import FEED_SITE

ROOT = Path(__file__).resolve().parents[2]

USES = """
import uuid
from feed.models import Comment, Entry

def newest(user: str) -> list[Entry]:
    return list(Entry.objects.filter(user=user).order_by("-published")[:10])

def first_tags(entry: Entry) -> list[str]:
    entry.save(expect_version=entry.version)
    pk: uuid.UUID = entry.pk
    assert pk
    return [str(tag) for tag in entry.tags]

def body(comment: Comment) -> str:
    return comment.body + comment.entry.title

Entry.objects.nothing()  # an error mypy must report
"""


@pytest.mark.slow
def test_mypy_with_the_django_plugin_accepts_the_models_and_catches_errors(tmp_path: Path) -> None:
    (tmp_path / "uses.py").write_text(USES)
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nplugins = mypy_django_plugin.main\nignore_missing_imports = true\n"
        "[mypy.plugins.django-stubs]\ndjango_settings_module = feedsite.settings\n"
    )
    env = {**os.environ, "MYPYPATH": f"{FEED_SITE}{os.pathsep}{ROOT}", "FEED_DATA": str(tmp_path)}
    env["PYTHONPATH"] = env["MYPYPATH"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(FEED_SITE / "feed" / "models.py"),
            str(tmp_path / "uses.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout + done.stderr
    assert 'has no attribute "nothing"' in errors[0] and "uses.py:17" in errors[0]
