"""Every program in examples/ runs and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "quickstart.py": "ada wrote: notes on the engine",
    "compare_and_set.py": "n = 100 after 100 bumps",
    "sharded.py": "users 1 and 2, merged across shards: 20 posts",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMALESS_URL": f"sqlite:///{tmp_path}/x.db"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED[name] in result.stdout


def test_every_example_is_exercised() -> None:
    on_disk = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert on_disk == set(EXPECTED)
