"""`upload --follow --target freeplay` of a log rotated by rename to `app.jsonl.1` (a name
no input matches) just after records were appended: Freeplay's reference server (a real
HTTP server on 127.0.0.1) records each of them once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import freeplay_fixtures
from tests.support.follow_kit import stop, wait_for
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer, completions_file
from tests.support.uploadkit import cli_env, tracecli

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def _completions(server: RefServer) -> int:
    return int(server.records()["counts"]["completions"])


def test_records_appended_just_before_a_rename_are_recorded_once(
    refserver: RefServer, tmp_path: Path
) -> None:
    rows = completions_file(tmp_path, 30, "all.jsonl").read_bytes().splitlines(keepends=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.jsonl"
    app.write_bytes(b"".join(rows[:10]))
    args = ["upload", "--follow", str(app), "--target", "freeplay", "--server"]
    args += [refserver.api_base, "--project", PROJECT, "--poll", "--flush-interval", "1.5"]
    proc = subprocess.Popen(
        tracecli(*args),
        stdout=(tmp_path / "out").open("wb"),
        stderr=(tmp_path / "err").open("wb"),
        stdin=subprocess.DEVNULL,
        env=cli_env(FREEPLAY_API_KEY=API_KEY),
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: _completions(refserver) == 10, 60, proc)
        with app.open("ab") as f:
            f.write(b"".join(rows[10:20]))
        app.rename(logs / "app.jsonl.1")
        app.write_bytes(b"".join(rows[20:]))
        wait_for(lambda: _completions(refserver) >= 30, 30, proc)
    finally:
        assert stop(proc) == 0, (tmp_path / "err").read_text()
    assert _completions(refserver) == 30  # each once
    assert "error" not in (tmp_path / "err").read_text()
