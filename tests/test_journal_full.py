"""The resume journal, the embedded store and the Freeplay ledger on a full disk: one clear
line, and the next run sends the rest.

A disk that fills while `upload` runs made the journal's next write fail; the upload
stopped with "internal error while sending: OperationalError('disk I/O error')". The
disk is made full for the upload alone by a file size limit (RLIMIT_FSIZE: a write past it
fails with EFBIG, as on a full disk), which only the journal's growing log reaches."""

from __future__ import annotations

import resource
import sqlite3

from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import API_KEY, PROJECT, completions_file
from tests.support.uploadkit import diff_calls, gen_calls, read_back, run_cli, write_flat

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


def test_a_journal_that_cannot_be_written_stops_the_upload_with_one_line(tmp_path, serve):
    calls = gen_calls(3000, seed=11, project="journal/full")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    args = ["upload", str(file), "--server", serve.url, "--chunk-size", "50"]

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    r = run_cli(*args, cwd=tmp_path, preexec_fn=small_disk)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the resume journal" in lines[0], r.stderr
    assert "journal.sqlite3" in lines[0] and "run the same command again" in lines[0]
    r = run_cli(*args, cwd=tmp_path)  # space again: the rest is sent
    assert r.returncode == 0, r.stderr
    assert diff_calls(calls, read_back(serve.url, "journal/full")) == []


def test_a_store_that_cannot_be_written_stops_the_upload_with_a_line_naming_it(tmp_path):
    """The same for the embedded store's file: it said "internal error while sending:
    OperationalError('disk I/O error')", exit 1."""
    calls = gen_calls(4000, seed=12, project="store/full")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    db = tmp_path / "store.db"
    args = ["upload", str(file), "--db", str(db)]

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    r = run_cli(*args, cwd=tmp_path, preexec_fn=small_disk)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    said = r.stderr.strip().splitlines()[-1]
    assert said.startswith(f"tracecli: error: cannot write the trace store {db}"), r.stderr
    assert "run the same command again" in said
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*), count(ended_at) FROM calls").fetchone()
    assert stored == (4000, 4000)


def test_a_freeplay_ledger_that_cannot_be_written_stops_the_upload_with_one_line(
    tmp_path, refserver
):
    """The same for the ledger of records Freeplay acknowledged (beside the journal)."""
    file = completions_file(tmp_path, 300)
    args = [
        "upload", str(file), "--target", "freeplay", "--server", refserver.api_base,
        "--api-key", API_KEY, "-p", PROJECT,
    ]  # fmt: skip

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    r = run_cli(*args, cwd=tmp_path, preexec_fn=small_disk)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    said = r.stderr.strip().splitlines()
    assert len(said) == 1 and "cannot write the Freeplay sent-records ledger" in said[0], said
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # what was in flight when the write failed (Freeplay acknowledged it) goes again
    assert 300 <= len(refserver.records()["completions"]) <= 300 + 8


def test_the_files_of_a_run_are_said_unwritable_in_one_wording():
    """The journal, the store and the Freeplay ledger: one helper words all three."""
    from tracecli.diagnostics import cannot_write

    exc = sqlite3.OperationalError("database or disk is full")
    for what in ("resume journal", "trace store", "Freeplay sent-records ledger"):
        assert cannot_write(what, "/d/f.sqlite3", exc) == (
            f"cannot write the {what} /d/f.sqlite3: database or disk is full; once it can be "
            "written (free some space), run the same command again to resume"
        )
