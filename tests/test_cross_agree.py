"""validate and upload say the same about the same files, and what they say is true.

Each test here is a disagreement or a false line found by trying files the way a user
would: the first round's notes name them (two copies of a file in one folder, OTLP record
counts, empty OTLP requests, `--help` to a full disk).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["validate", "--help"], ["upload", "-h"]]
)
def test_help_and_version_to_a_full_stdout_are_one_line(tmp_path: Path, args: list[str]) -> None:
    """`tracecli --help > /dev/full` ended in a traceback from Click's echo (OSError: No
    space left on device), where every command says one line and exits 2."""
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [sys.executable, "-m", "tracecli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=120,
        )
    assert (out.returncode, out.stderr) == (
        2,
        "tracecli: error: cannot write to stdout: No space left on device\n",
    )
