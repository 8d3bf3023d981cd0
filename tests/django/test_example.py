"""The example Django project runs end to end, as a reader would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django_app"


def test_the_example_project_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXAMPLE_DB": str(tmp_path / "example.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=EXAMPLE, env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    demo = subprocess.run(
        [sys.executable, "demo.py"], cwd=EXAMPLE, env=env, capture_output=True, text=True
    )
    assert demo.returncode == 0, demo.stderr
    assert "user 1, newest two: ['entry 1', 'entry 4']" in demo.stdout
    assert "GET /?page=2 -> 200 5 entries" in demo.stdout
    assert "<h1>entry 1 (edited)</h1>" in demo.stdout
