"""A damaged resume journal (a disk fault, a file written over, a crash of the file system):
one line that says what to do, and `--restart` (which ignores the journal) gets the user
going again instead of failing on the same file forever. Real `tracecli serve`."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.servers import ServerHandle
from tests.support.uploadkit import diff_calls, gen_calls, read_back, run_cli, write_flat


def upload(file: Path, url: str, state: Path, *more: str) -> tuple[int, str, dict | None]:
    r = run_cli(
        "upload", str(file), "--server", url, "--format", "json", *more,
        cwd=file.parent, XDG_STATE_HOME=str(state),
    )  # fmt: skip
    return r.returncode, r.stderr, orjson.loads(r.stdout) if r.stdout.strip() else None


def scribble(path: Path) -> None:
    """Overwrite every page past the first with bytes that are no SQLite page."""
    data = bytearray(path.read_bytes())
    for i in range(4096, len(data), 509):
        data[i] = 0xAB
    path.write_bytes(bytes(data))


def test_a_corrupt_journal_is_one_line_and_restart_starts_a_new_one(
    tmp_path: Path, serve: ServerHandle
) -> None:
    proj = "journal/damaged"
    calls = gen_calls(400, seed=41, project=proj)
    file = write_flat(tmp_path / "calls.jsonl", calls)
    state = tmp_path / "state"
    code, err, _ = upload(file, serve.url, state, "--chunk-size", "20")
    assert code == 0, err
    journal = state / "tracecli" / "journal.sqlite3"
    for damage in (scribble, lambda p: p.write_bytes(b"not a database at all\n" * 300)):
        damage(journal)
        code, err, report = upload(file, serve.url, state)
        assert code == 2 and report is None, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert str(journal) in err and "--restart" in err and "aside" in err, err
        code, err, report = upload(file, serve.url, state, "--restart")
        assert code == 0, err
        assert report is not None and report["uploaded"] == 400, report
        assert journal.with_name("journal.sqlite3.corrupt").exists()
        # the new journal works: the same command again skips everything
        code, err, report = upload(file, serve.url, state)
        assert code == 0 and report is not None, err
        assert (report["uploaded"], report["skipped"]) == (0, 800), report
    assert diff_calls(calls, read_back(serve.url, proj)) == []
