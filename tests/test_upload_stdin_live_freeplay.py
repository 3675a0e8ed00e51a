"""`tracecli upload - --target freeplay` from a pipe that stays open: the records go to
Freeplay's reference server before the pipe closes, and SIGTERM sends the rest read."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.support import freeplay_fixtures
from tests.support.follow_kit import wait_for
from tests.support.freeplay_fixtures import API_KEY, PROJECT, RefServer, completions_file
from tests.support.uploadkit import cli_env, tracecli

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def stored(server: RefServer) -> int:
    counts = server.records()["counts"]
    return int(counts["completions"] + counts["traces"])


def test_freeplay_records_from_an_open_pipe_go_as_they_come(
    refserver: RefServer, tmp_path: Path
) -> None:
    rows = completions_file(tmp_path, 12, "all.jsonl").read_bytes().splitlines(keepends=True)
    args = ["upload", "-", "--target", "freeplay", "--server", refserver.api_base]
    proc = subprocess.Popen(
        tracecli(*args, "--project", PROJECT),
        stdin=subprocess.PIPE,
        stdout=(tmp_path / "out").open("wb"),
        stderr=(tmp_path / "err").open("wb"),
        env=cli_env(FREEPLAY_API_KEY=API_KEY),
        cwd=tmp_path,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"".join(rows[:8]))
        proc.stdin.flush()
        wait_for(lambda: stored(refserver) == 8, 30, proc)  # the pipe still open
        proc.stdin.write(b"".join(rows[8:]))
        proc.stdin.flush()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    err = (tmp_path / "err").read_text()
    assert code == 128 + signal.SIGTERM, err
    assert "every record read from stdin was sent" in err, err
    assert stored(refserver) == 12
