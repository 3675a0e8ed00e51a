"""Directories given as input, as producers and people leave them: links, lock files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.validate_kit import EACH_READER, call, write_jsonl
from tracecli.cli import app
from tracecli.inputs.watch import Watcher

runner = CliRunner()


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


# What log rotation leaves beside a trace file: logrotate (`.1`, `.2.gz`, `-20250101`),
# Python's RotatingFileHandler (`.1`) and TimedRotatingFileHandler (`.2025-01-01`,
# `.2025-01-01_10-00-00`)
ROTATED = [
    "app.jsonl.1",
    "app.jsonl.2.gz",
    "app.jsonl-20250101",
    "app.jsonl-2025010112.gz",
    "app.jsonl.2025-01-01",
    "app.jsonl.2025-01-01_10-00-00",
    "app.ndjson.12",
]
# and what is no trace file for all its name: copies, editors' files, downloads in progress
NOT_TRACES = ["app.jsonl.bak", "app.jsonl~", ".app.jsonl.swp", "app.jsonl.tmp", "app.jsonl.gz.part"]


def test_rotated_trace_files_in_a_directory_are_read(here: Path) -> None:
    """`tracecli upload logs/` after a rotation read `app.jsonl` alone: the calls of the
    rotated files were left out without a word (exit 0)."""
    for name in ["app.jsonl", *ROTATED, *NOT_TRACES]:
        write_jsonl(here / "logs" / name, call(), gz=name.endswith(".gz"))
    got = runner.invoke(app, ["validate", "logs", "--format", "json"])
    assert got.exit_code == 0, got.stdout
    assert json.loads(got.stdout)["files"] == 1 + len(ROTATED)
    got = runner.invoke(app, ["upload", "logs", "--db", "store.db", "--format", "json"])
    assert got.exit_code == 0, got.stdout + got.stderr
    assert json.loads(got.stdout)["uploaded"] == 1 + len(ROTATED)


def test_a_rotated_yaml_file_is_read_as_yaml(here: Path) -> None:
    text = "- " + json.dumps(call()[0]) + "\n- " + json.dumps(call()[0]) + "\n"
    (here / "run.yaml.1").write_text(text)
    got = runner.invoke(app, ["validate", "run.yaml.1", "--format", "json"])
    report = json.loads(got.stdout)
    assert (report["records"], report["errors"]) == (2, 0), report


def test_follow_watches_what_it_watched_in_a_directory(tmp_path: Path) -> None:
    """`upload --follow` of a directory: its rotated files held what it sent as the live
    file; the watcher's choice of files is left as it was."""
    live = write_jsonl(tmp_path / "d" / "app.jsonl", call())
    write_jsonl(tmp_path / "d" / "app.jsonl.1", call())
    assert Watcher([str(tmp_path / "d")]).expand() == [str(live)]


# the start of the AppleDouble file macOS writes beside each file on a disk or in a zip that
# cannot hold its metadata: magic 0x00051607, version 2, a 16-byte filler, entries
APPLE_DOUBLE = (
    b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + b"\x00\x02" + b"\x00" * 60
)


def test_macos_metadata_files_in_a_directory_are_no_input(here: Path) -> None:
    """A folder copied from a Mac to a USB stick, or unzipped from a Mac's zip, has a
    `._name.jsonl` beside each `name.jsonl` (and `__MACOSX/`): binary metadata, which made
    an "invalid UTF-8" error for each of its "lines" and failed the run."""
    write_jsonl(here / "d" / "a.jsonl", call())
    (here / "d" / "._a.jsonl").write_bytes(APPLE_DOUBLE)
    (here / "d" / "__MACOSX" / "d").mkdir(parents=True)
    (here / "d" / "__MACOSX" / "d" / "._a.jsonl").write_bytes(APPLE_DOUBLE)
    (here / "d" / "._b.jsonl").write_text("{}\n")  # a trace file so named: read
    got = runner.invoke(app, ["validate", "d", "--format", "json"])
    report = json.loads(got.stdout)
    assert report["files"] == 2, report
    assert [d["path"] for d in report["diagnostics"]] == [os.path.join("d", "._b.jsonl")]
