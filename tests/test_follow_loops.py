"""`upload --follow` and a symbolic-link loop (ELOOP): unlike a named file that does not
exist yet (followed: it may appear), a loop never resolves. Said once as an error; when no
other path is left, the follow ends at once with exit code 2 instead of following nothing.

Real processes on 127.0.0.1: a follower uploading to `tracecli serve`.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.follow_kit import start_follower, stop, wait_for
from tests.support.uploadkit import gen_calls, read_back, run_cli, tracecli_serve, write_flat


def test_following_only_a_loop_ends_at_once_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "loop.jsonl").symlink_to("loop.jsonl")
    with tracecli_serve(tmp_path / "srv") as serve:
        got = run_cli(
            "upload", "--follow", "loop.jsonl", "--server", serve.url, timeout=30, cwd=tmp_path
        )
    assert got.returncode == 2, got.stderr
    assert got.stderr == "tracecli: error: loop.jsonl: too many levels of symbolic links\n"


def test_a_loop_beside_a_file_is_said_once_and_the_file_followed(tmp_path: Path) -> None:
    (tmp_path / "loop.jsonl").symlink_to("loop.jsonl")
    write_flat(tmp_path / "t.jsonl", gen_calls(3))
    with tracecli_serve(tmp_path / "srv") as serve:
        proc = start_follower(tmp_path, serve.url, "loop.jsonl", "t.jsonl")
        try:
            wait_for(lambda: len(read_back(serve.url)) == 3, 30, proc)
        finally:
            code = stop(proc)
    assert code == 0
    err = (tmp_path / "follow0.err").read_text()
    said = [ln for ln in err.splitlines() if "loop.jsonl" in ln]
    assert said == ["loop.jsonl:0: error: (file): too many levels of symbolic links: not followed"]
