"""The static checks CI holds the code to, run as part of the test suite: `mypy --strict` on
the package (its `py.typed` promises callers its hints), and ruff's lint and format checks
on the package and the tests. Each is skipped, saying why, where its tool is not installed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env, check=False
    )


def _ruff() -> str:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff)")
    return ruff


@pytest.mark.slow
def test_mypy_strict_finds_nothing(tmp_path: Path) -> None:
    """`python3 -m mypy tracecli` (the settings are pyproject's [tool.mypy]: strict, and
    an unused `type: ignore` is an error too); its cache goes to a temporary folder."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy types-PyYAML)")
    env = {**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")}
    done = _run([sys.executable, "-m", "mypy", "tracecli"], env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_check_finds_nothing() -> None:
    done = _run([_ruff(), "check", "--no-cache", "tracecli", "tests"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_changes_nothing() -> None:
    done = _run([_ruff(), "format", "--check", "--no-cache", "tracecli", "tests"])
    assert done.returncode == 0, done.stdout + done.stderr
