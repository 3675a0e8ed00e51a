"""The resume journal: acks survive reopening and kill -9, identity changes start over."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.config.paths import state_dir
from tracecli.journal.acks import BLOCK_LINES, AckSet
from tracecli.journal.database import target_key
from tracecli.journal.file_identity import identity
from tracecli.journal.resume import Journal

SERVER = "http://127.0.0.1:6345"


def make(tmp_path: Path, name: str = "a.jsonl", lines: int = 10) -> Path:
    p = tmp_path / name
    p.write_text("".join(f'{{"n": {i}}}\n' for i in range(lines)))
    return p


def test_lives_in_the_state_dir_and_is_private(tmp_path):
    with Journal.open(server=SERVER, project=None) as j:
        assert j.path.parent == state_dir()
        assert str(j.path).startswith(os.environ["XDG_STATE_HOME"])
        j.ack(make(tmp_path), [1])
    assert (j.path.stat().st_mode & 0o777) == 0o600


def test_acks_persist_across_runs(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        st0 = j.file(f)
        assert (st0.journaled, st0.changed, st0.acked, st0.done) == (True, False, 0, False)
        j.ack(f, [1, 2, 5])
        j.ack(f, [5, 7])
        assert sorted(j.acked(f)) == [1, 2, 5, 7]
    with Journal.open(server=SERVER, project=None) as j:
        st1 = j.file(f)
        assert st1.acked == 4 and not st1.changed
        acks = j.acked(f)
        assert 5 in acks and 3 not in acks and len(acks) == 4


def test_done_is_remembered(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, range(10))
        j.done(f)
    with Journal.open(server=SERVER, project=None) as j:
        assert j.file(f).done


def test_appended_file_keeps_its_acks_and_resumes_after_the_stored_prefix(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, [1, 2, 3, 5])
    # settled on close: lines 1-3 stored, line 4 not (the prefix ends after line 3)
    f.write_text(f.read_text() + '{"n": 99}\n')  # appended: size and mtime change
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert st.appended and not st.changed and st.acked == 4
        assert (st.resume_offset, st.resume_line) == (27, 3)
        j.ack(f, [4, 6, 7, 8, 9, 10, 11])
        assert j.settle(f) == f.stat().st_size
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert (st.resume_offset, st.resume_line) == (f.stat().st_size, 11)
        assert not st.appended and st.done is False


def test_changed_file_starts_over(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1, 2, 3])
    f.write_text('{"n": "other"}\n' + f.read_text())  # the seen part changed
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert st.changed and st.acked == 0 and st.resume_offset == 0
        assert len(j.acked(f)) == 0
    # ...and the next run sees it unchanged again
    with Journal.open(server=SERVER, project=None) as j:
        assert not j.file(f).changed


def test_truncated_file_starts_over(tmp_path):
    f = make(tmp_path, lines=10)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, range(1, 11))
    with open(f, "r+b") as fh:  # copytruncate: same inode, emptied, then written again
        fh.truncate(0)
    f.write_text('{"n": 0}\n{"n": 1}\n')
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert st.changed and st.acked == 0 and st.resume_offset == 0


def test_rotation_by_rename_resumes_the_old_file_and_starts_the_new(tmp_path):
    f = make(tmp_path, lines=4)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1, 2])
    size_then = f.stat().st_size
    with open(f, "a") as fh:
        fh.write('{"n": 4}\n')
    rotated = tmp_path / "a.jsonl.1"
    f.rename(rotated)
    f.write_text('{"n": "new"}\n')  # the app opens a new file at the old path
    with Journal.open(server=SERVER, project=None) as j:
        new = j.file(f)  # the new file first: the old entry must survive it
        assert (new.acked, new.changed, new.resume_offset) == (0, False, 0)
        old = j.file(rotated)
        assert old.appended and old.acked == 2 and not old.changed
        assert old.resume_line == 2 and 0 < old.resume_offset < size_then


def test_half_written_last_line_is_not_settled(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"n": 0}\n{"n": 1}\n{"n": 2')
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, [1, 2, 3])
        assert j.settle(f) == len(b'{"n": 0}\n{"n": 1}\n')


def test_blank_lines_do_not_stop_the_prefix(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"n": 0}\n\n  \n{"n": 1}\n')
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, [1, 4])
        assert j.settle(f) == f.stat().st_size


def test_schema_1_journal_is_upgraded(tmp_path):
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE files (id INTEGER PRIMARY KEY, target TEXT NOT NULL, path TEXT NOT NULL,"
        " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, head TEXT NOT NULL,"
        " acked INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,"
        " updated REAL NOT NULL, UNIQUE (target, path)); PRAGMA user_version=1;"
    )
    conn.close()
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None, db_path=db) as j:
        j.ack(f, [1])
    with Journal.open(server=SERVER, project=None, db_path=db) as j:
        assert j.file(f).acked == 1


def test_same_size_and_mtime_but_new_content_is_a_change(tmp_path):
    f = make(tmp_path)
    st = f.stat()
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1])
    f.write_text(f.read_text().replace('"n": 1}', '"n": 7}'))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size
    with Journal.open(server=SERVER, project=None) as j:
        assert j.file(f).changed


def test_keyed_by_server_and_project(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1])
    for server, project in [
        ("http://127.0.0.1:9999", None),
        (SERVER, "ent/other"),
    ]:
        with Journal.open(server=server, project=project) as j:
            assert j.file(f).acked == 0
    # same server spelled with credentials, a trailing slash or another case: same target
    with Journal.open(server="HTTP://user:pw@127.0.0.1:6345/", project=None) as j:
        assert j.file(f).acked == 1


def test_restart_forgets(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1, 2])
    with Journal.open(server=SERVER, project=None, restart=True) as j:
        st = j.file(f)
        assert st.acked == 0 and not st.changed
        j.ack(f, [3])
    with Journal.open(server=SERVER, project=None) as j:
        assert sorted(j.acked(f)) == [3]


def test_stdin_is_not_journaled(tmp_path):
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file("-")
        assert not st.journaled
        j.ack("-", [1, 2])
        assert len(j.acked("-")) == 0


def test_forget(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1])
        j.forget(f)
        assert len(j.acked(f)) == 0
    with Journal.open(server=SERVER, project=None) as j:
        assert j.file(f).acked == 0


def test_no_secret_is_stored(tmp_path):
    key = "sk-journal-secret-0123456789"
    f = make(tmp_path)
    with Journal.open(server=f"https://api:{key}@trace.example.com", project="e/p") as j:
        j.ack(f, range(5))
    data = b"".join(p.read_bytes() for p in j.path.parent.iterdir() if p.is_file())
    assert key.encode() not in data
    assert b"trace.example.com" not in data
    assert target_key(f"https://api:{key}@trace.example.com", "e/p") == target_key(
        "https://trace.example.com", "e/p"
    )


@pytest.mark.slow
def test_millions_of_lines_stay_compact(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:
        for start in range(0, 2_000_000, 500):
            j.ack(f, range(start, start + 500, 2))  # every other line (starts, say)
        assert len(j.acked(f)) == 1_000_000
    size = sum(p.stat().st_size for p in j.path.parent.iterdir())
    with sqlite3.connect(j.path) as conn:
        blocks = conn.execute("SELECT count(*), sum(length(bits)) FROM acks").fetchone()
    assert blocks[0] == -(-2_000_000 // BLOCK_LINES)
    assert blocks[1] <= 2_000_000 // 8 + 8
    assert size < 2 * 1024 * 1024  # bitmap blocks, not rows per line
    with Journal.open(server=SERVER, project=None) as j:
        acks = j.acked(f)
        assert len(acks) == 1_000_000 and 1_999_998 in acks and 1_999_999 not in acks


def test_newer_schema_is_refused(tmp_path):
    from tracecli.diagnostics import UsageError

    with Journal.open(server=SERVER, project=None) as j:
        pass
    with sqlite3.connect(j.path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(UsageError, match="newer tracecli"):
        Journal.open(server=SERVER, project=None)


def test_identity_of_non_regular_files(tmp_path):
    assert identity("-") is None
    assert identity(tmp_path) is None
    assert identity(tmp_path / "missing") is None


def test_kill_9_loses_at_most_what_is_in_flight(tmp_path):
    """A child acks one line at a time; after SIGKILL every ack it reported is on disk."""
    f = make(tmp_path, lines=3)
    db = tmp_path / "j.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        from tracecli.journal.resume import Journal
        j = Journal.open(server={SERVER!r}, project=None, db_path={str(db)!r})
        for n in range(10**9):
            j.ack({str(f)!r}, [n])
            print(n, flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    last = -1
    deadline = time.monotonic() + 30
    while last < 3000 and time.monotonic() < deadline:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().split():  # what it reported before it died
        last = int(line)
    with Journal.open(server=SERVER, project=None, db_path=db) as j:
        acks = j.acked(f)
        assert last >= 3000
        assert all(n in acks for n in range(last + 1))  # every reported ack survived
        assert len(acks) <= last + 2  # at most the one in flight beyond


def test_concurrent_acks_from_threads(tmp_path):
    import threading

    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None) as j:

        def worker(k: int) -> None:
            for i in range(200):
                j.ack(f, [k * 1000 + i])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with Journal.open(server=SERVER, project=None) as j:
        assert len(j.acked(f)) == 800


@pytest.mark.slow
@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.lists(st.integers(0, 300_000), max_size=50), max_size=10))
def test_ackset_matches_a_set(batches):
    acks = AckSet()
    ref: set[int] = set()
    for b in batches:
        acks.add(b)
        ref.update(b)
    assert len(acks) == len(ref)
    assert list(acks) == sorted(ref)
    assert all(n in acks for n in ref)
    assert -1 not in acks and "1" not in acks
    # blocks round-trip
    copy = AckSet()
    for n in {x // BLOCK_LINES for x in ref}:
        copy.load_block(n, acks.block(n))
    assert list(copy) == sorted(ref) and len(copy) == len(ref)


def test_asking_twice_in_one_run_keeps_this_runs_acks(tmp_path):
    f = make(tmp_path)
    with Journal.open(server=SERVER, project=None, restart=True) as j:
        j.file(f)
        j.ack(f, [1, 2])
        assert j.file(f).acked == 0  # what earlier runs left: nothing (restart)
        assert sorted(j.acked(f)) == [1, 2]


def test_copytruncate_copy_resumes_and_the_truncated_file_starts_over(tmp_path):
    f = make(tmp_path, lines=4)
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, [1, 2, 3])
    with open(f, "a") as fh:
        fh.write('{"n": 4}\n')
    copy = tmp_path / "a.jsonl.1"
    copy.write_bytes(f.read_bytes())  # copytruncate: a copy, then the original emptied
    with open(f, "r+b") as fh:
        fh.truncate(0)
    f.write_text('{"n": "new"}\n')
    with Journal.open(server=SERVER, project=None) as j:
        now = j.file(f)  # the truncated original first: its old acks must survive it
        assert now.changed and now.acked == 0
        old = j.file(copy)
        assert old.appended and old.acked == 3 and old.resume_line == 3


def test_a_copy_of_a_file_still_in_place_is_another_upload(tmp_path):
    f = make(tmp_path, lines=4)
    with Journal.open(server=SERVER, project=None) as j:
        j.ack(f, [1, 2, 3, 4])
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(f.read_bytes())
    with Journal.open(server=SERVER, project=None) as j:
        assert j.file(copy).acked == 0


def test_invalid_lines_are_passed_over_only_when_asked(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"n": 0}\nnot json\n{"n": 2}\n')
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, [1, 3])
        j.pass_over(f, [2])
        assert j.settle(f) == len(b'{"n": 0}\n')  # an upload reads its rejects again
    with Journal.open(server=SERVER, project=None, pass_invalid=True) as j:
        j.file(f)
        j.pass_over(f, [2])
        assert j.settle(f) == f.stat().st_size
    with Journal.open(server=SERVER, project=None, pass_invalid=True) as j:
        assert j.file(f).resume_offset == f.stat().st_size


def test_settled_acks_are_compacted_and_still_counted(tmp_path):
    f = make(tmp_path, lines=3 * BLOCK_LINES // 2)
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)
        j.ack(f, range(1, 3 * BLOCK_LINES // 2 + 1))
    conn = sqlite3.connect(state_dir() / "journal.sqlite3")
    blocks = [b for (b,) in conn.execute("SELECT block FROM acks")]
    conn.close()
    assert blocks == [1]  # block 0 lies wholly before the resume point: dropped
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert st.acked == 3 * BLOCK_LINES // 2 and st.compacted == BLOCK_LINES - 1
        assert st.resume_offset == f.stat().st_size


def test_lines_appended_while_a_run_reads_keep_their_acks_in_the_next_run(tmp_path):
    """A run registers the file, then reads further than that (the app appended in between:
    `upload --follow` wakes as the app writes) and acks those lines too. The resume point
    must not pass the size the run registered: the next run would find it beyond the
    stored size, start from 0 and, its early acks compacted away, send them all again."""
    f = make(tmp_path, lines=BLOCK_LINES + 100)
    with Journal.open(server=SERVER, project=None) as j:
        j.file(f)  # registered at this size
        with f.open("a") as out:  # the app appends before the run reads the end
            out.write("".join(f'{{"n": {i}}}\n' for i in range(100)))
        j.ack(f, range(1, BLOCK_LINES + 201))  # the run read and stored every line
    with f.open("a") as out:
        out.write('{"n": "new"}\n')
    with Journal.open(server=SERVER, project=None) as j:
        st = j.file(f)
        assert st.appended and not st.changed
        assert st.resume_line > BLOCK_LINES  # not back to the start
        acked = j.acked(f)
        missing = [n for n in range(st.resume_line + 1, BLOCK_LINES + 201) if n not in acked]
        assert missing == []  # every stored line is known as stored
        assert st.acked == BLOCK_LINES + 200
