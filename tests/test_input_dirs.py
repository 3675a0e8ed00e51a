"""Directories given as input, as producers and people leave them: links, lock files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.validate_kit import call, write_jsonl
from tracecli.cli import app
from tracecli.inputs.watch import Watcher

runner = CliRunner()

# the three commands that read inputs, each with the arguments it needs around a path
EACH_READER = pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["upload", "--target", "local", "--dry-run"],
        ["convert", "--to", "freeplay", "-o", "out.jsonl"],
    ],
    ids=["validate", "upload", "convert"],
)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so the paths in the output are short and exact."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@EACH_READER
def test_a_dangling_link_inside_a_directory_is_said_not_skipped(
    here: Path, args: list[str]
) -> None:
    """`latest.jsonl -> run-7.jsonl` after run-7.jsonl was moved away: the records it named
    may be missing, so the run says which link and where it led, and exits 2 (it was left
    out without a word, exit 0)."""
    write_jsonl(here / "d" / "ok.jsonl", call())
    (here / "d" / "latest.jsonl").symlink_to("run-7.jsonl")
    got = runner.invoke(app, [*args[:1], "d", *args[1:]])
    assert "Traceback" not in got.stdout + got.stderr
    assert got.exit_code == 2
    link = os.path.join("d", "latest.jsonl")
    assert got.stderr == (
        f"tracecli: error: {link}: cannot read the file: it is a symbolic link to "
        "run-7.jsonl, which does not exist\n"
    )


@EACH_READER
def test_an_editor_lock_link_inside_a_directory_is_no_input(here: Path, args: list[str]) -> None:
    """Emacs marks a file being edited with a dangling link `.#name` (to `user@host.pid`):
    it is no trace file, and the directory reads as without it."""
    write_jsonl(here / "d" / "ok.jsonl", call())
    (here / "d" / ".#ok.jsonl").symlink_to("me@host.4242:1700000000")
    got = runner.invoke(app, [*args[:1], "d", *args[1:]])
    assert "Traceback" not in got.stdout + got.stderr
    assert got.exit_code == 0, got.stderr
    assert "error" not in got.stderr and ".#" not in got.stderr


def test_follow_still_waits_for_a_dangling_link_inside_a_directory(tmp_path: Path) -> None:
    """`upload --follow`: a link whose file is being rotated may resolve at the next look,
    so the watcher leaves it out for now instead of stopping."""
    ok = write_jsonl(tmp_path / "d" / "ok.jsonl", call())
    (tmp_path / "d" / "latest.jsonl").symlink_to("run-8.jsonl")
    assert Watcher([str(tmp_path / "d")]).expand() == [str(ok)]
    run = write_jsonl(tmp_path / "d" / "run-8.jsonl", call())
    assert os.path.samefile(Watcher([str(tmp_path / "d")]).expand()[0], run)
