"""The wheel, built and installed as a user would: it adds only ``schemaless*`` names to
site-packages, and its commands work beside a user's own package called ``indexer``.

The repository keeps ``indexer/`` and ``migrations/`` at its top level; the wheel installs them as
``schemaless_indexer/`` and ``schemaless_migrations/`` (pyproject.toml). A top-level ``indexer``
in the wheel broke our commands for every Django project with an app of that name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD_NAME = re.compile(r"^\s*(from indexer[. ]|import indexer\b)", re.MULTILINE)


def test_no_code_imports_the_daemons_by_their_folder_name() -> None:
    """In a checkout ``indexer`` still imports (the root is on sys.path), but an installed wheel
    has no such name: and two names would make two copies of every daemon module."""
    found = [
        str(path.relative_to(ROOT))
        for folder in ("schemaless", "indexer", "tests", "bench", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if OLD_NAME.search(path.read_text())
    ]
    assert not found, f"import the daemons as schemaless_indexer, not indexer: {found}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built with hatchling from this checkout."""
    if importlib.util.find_spec("hatchling") is None:
        if os.environ.get("CI"):
            pytest.fail("hatchling is missing, and CI must not skip: pip install -e .[dev]")
        pytest.skip("hatchling is not installed (pip install -e .[dev])")
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "-q", "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    [found] = out.glob("schemaless-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_adds_only_schemaless_names(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {
        "schemaless",
        "schemaless_indexer",
        "schemaless_migrations",
        f"{wheel.name.split('-py3')[0]}.dist-info",
    }
    # The daemons and the alembic scripts are there under their new names, and the checkout's
    # stand-in for schemaless_indexer is not.
    assert {"schemaless_indexer/worker.py", "schemaless_migrations/env.py"} <= set(names)
    with zipfile.ZipFile(wheel) as archive:
        assert b"__path__" not in archive.read("schemaless_indexer/__init__.py")


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away venv holding the wheel; its dependencies are borrowed from this one."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*pip, "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    # A bare path line: sys.path gains this venv's site-packages, but not the .pth files in it
    # (this venv's own editable install would put the checkout back on sys.path).
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A Django-style project with an app called ``indexer``, on the path as Django puts it."""
    app = tmp_path / "indexer"
    app.mkdir()
    (app / "__init__.py").write_text("MINE = 'the user app'\n")
    (app / "worker.py").write_text("raise ImportError('the user app has its own worker.py')\n")
    return tmp_path


def run(venv: Path, project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCHEMALESS_URL")}
    env["PYTHONPATH"] = str(project)
    return subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_the_installed_commands_work_beside_a_user_app_called_indexer(
    installed: Path, user_project: Path
) -> None:
    bin_dir, url = installed / "bin", f"--url=sqlite:///{user_project / 'app.db'}"
    python, schemaless = str(bin_dir / "python"), str(bin_dir / "schemaless")
    where = run(
        installed, user_project, python, "-c", "import schemaless; print(schemaless.__file__)"
    )
    assert where.stdout.startswith(str(installed)), where  # the wheel's, not the checkout's
    assert run(installed, user_project, schemaless, "--help").returncode == 0
    for argv in (
        [schemaless, "migrate", url],
        [schemaless, "index", "add", "entry_by_n", "--kind", "entry", "--field", "n:int", url],
        [
            python,
            "-c",
            f"import schemaless; schemaless.connect('{url[6:]}').put('entry', {{'n': 1}})",
        ],
        [schemaless, "indexer", "--burst", url],
        [python, "-m", "schemaless", "indexer", "--burst", url],
        [schemaless, "verify", url],
        [schemaless, "status", url],
    ):
        done = run(installed, user_project, *argv)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    status = run(installed, user_project, schemaless, "status", "--json", url)
    assert '"rows": 1' in status.stdout
    mine = run(installed, user_project, python, "-c", "import indexer; print(indexer.MINE)")
    assert mine.stdout.strip() == "the user app"
