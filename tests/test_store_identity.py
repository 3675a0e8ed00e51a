"""The embedded store's identity and the resume journal.

An upload to the store journals what it stored under the store's path *and* its id (a random
id made with the file), so a store deleted, replaced by another store's file, or made anew at
the same path is a new target: the next upload sends everything again instead of saying there
is nothing new. Real store files and real `tracecli upload` runs (HOME and XDG in tmp, as
conftest sets them); the id itself is checked on Store objects beside.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import orjson

from tests.support.uploadkit import PROJECT, cli_env, gen_calls, run_cli, tracecli, write_flat
from tracecli.journal.database import store_key, target_key
from tracecli.journal.resume import Journal
from tracecli.journal.store_marks import StoreGuard
from tracecli.store.db import Store

N = 20


def _trace(path: Path, *, seed: int = 1, orphan_ends: int = 0) -> Path:
    """N calls (flat starts and ends); `orphan_ends` ends whose start is in no file (they
    wait in the store's pending_ends)."""
    write_flat(path, gen_calls(N, seed=seed))
    with path.open("ab") as f:
        for _start, end in gen_calls(orphan_ends, seed=seed + 100) if orphan_ends else ():
            f.write(orjson.dumps({"type": "end", **end}) + b"\n")
    return path


def _upload(trace: Path, db: Path, **env: str) -> tuple[int, int]:
    """`tracecli upload TRACE --db DB`: (calls uploaded, records skipped as sent before)."""
    res = run_cli("upload", str(trace), "--db", str(db), timeout=60, **env)
    assert res.returncode == 0, res.stderr
    uploaded = re.search(r"^calls uploaded +([\d,]+)$", res.stderr, re.M)
    skipped = re.search(r"^skipped \(sent before\) +([\d,]+)$", res.stderr, re.M)
    assert uploaded and skipped, res.stderr
    return int(uploaded[1].replace(",", "")), int(skipped[1].replace(",", ""))


def _remove_store(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _count(db: Path) -> int:
    with Store(db, create=False) as store:
        return store.count(PROJECT)


def _rows_digest(db: Path) -> dict[str, list[str]]:
    """A hash of every row of calls and pending_ends, in key order."""
    out: dict[str, list[str]] = {}
    with sqlite3.connect(db) as raw:
        for table in ("calls", "pending_ends"):
            rows = raw.execute(f"SELECT * FROM {table} ORDER BY project_id, id").fetchall()
            out[table] = [hashlib.sha256(repr(r).encode()).hexdigest() for r in rows]
    return out


def _store_id_in(db: Path) -> str | None:
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchall()
    return rows[0][0] if rows else None


# -- real uploads ----------------------------------------------------------------------------


def test_a_deleted_store_is_sent_everything_again(tmp_path: Path) -> None:
    trace, db = _trace(tmp_path / "t.jsonl"), tmp_path / "store.db"
    assert _upload(trace, db) == (N, 0)
    _remove_store(db)
    assert _upload(trace, db) == (N, 0)  # not "nothing new to send"
    assert _count(db) == N


def test_another_stores_file_in_its_place_is_sent_everything_again(tmp_path: Path) -> None:
    trace, db = _trace(tmp_path / "t.jsonl"), tmp_path / "store.db"
    other_trace, other = _trace(tmp_path / "o.jsonl", seed=7), tmp_path / "other.db"
    assert _upload(trace, db) == (N, 0)
    assert _upload(other_trace, other) == (N, 0)
    first_id, other_id = _store_id_in(db), _store_id_in(other)
    assert first_id and other_id and first_id != other_id
    _remove_store(db)
    other.rename(db)  # (a closed store leaves no -wal beside it)
    assert _upload(trace, db) == (N, 0)
    assert _count(db) == 2 * N
    assert _store_id_in(db) == other_id  # the file keeps its own id


def test_the_same_store_twice_skips_everything(tmp_path: Path) -> None:
    trace, db = _trace(tmp_path / "t.jsonl", orphan_ends=2), tmp_path / "store.db"
    assert _upload(trace, db) == (N, 0)
    store_id = _store_id_in(db)
    assert _upload(trace, db) == (0, 2 * N + 2)
    assert _store_id_in(db) == store_id


def test_a_store_from_before_the_id_gets_one_and_a_resend_changes_no_row(tmp_path: Path) -> None:
    trace, db = _trace(tmp_path / "t.jsonl", orphan_ends=3), tmp_path / "store.db"
    assert _upload(trace, db) == (N, 0)
    with sqlite3.connect(db) as raw:  # as a tracecli from before the id left it
        raw.execute("DROP TABLE store_meta")
    before = _rows_digest(db)
    assert len(before["calls"]) == N and len(before["pending_ends"]) == 3
    assert _upload(trace, db) == (N, 0)  # its old journal entry is not used: re-sent
    assert _store_id_in(db) is not None
    assert _rows_digest(db) == before  # the same ids upserted unchanged, nothing duplicated
    assert _upload(trace, db) == (0, 2 * N + 3)  # and from now on resumed as before


def test_a_restored_older_copy_of_the_store_is_sent_everything_again(tmp_path: Path) -> None:
    """A backup keeps the store id but not what was stored since: the marks tell."""
    trace, db = _trace(tmp_path / "t.jsonl"), tmp_path / "store.db"
    assert _upload(trace, db) == (N, 0)
    backup = tmp_path / "backup.db"
    shutil.copyfile(db, backup)  # (a closed store is one file)
    with trace.open("ab") as f:  # the app wrote more; the next upload sends only that
        for start, end in gen_calls(5, seed=55):
            f.write(orjson.dumps({"type": "call", **start, **end}) + b"\n")
    assert _upload(trace, db) == (5, 2 * N)
    _remove_store(db)
    shutil.copyfile(backup, db)
    res = run_cli("upload", str(trace), "--db", str(db), "--format", "json", timeout=60)
    report = orjson.loads(res.stdout)
    assert (report["uploaded"], report["skipped"]) == (N + 5, 0)  # not "nothing new to send"
    assert report["store_resent"] is True
    assert _count(db) == N + 5
    res = run_cli("upload", str(trace), "--db", str(db), timeout=60)
    assert "every call was sent again" not in res.stderr
    assert re.search(r"^calls uploaded +0$", res.stderr, re.M), res.stderr
    _remove_store(db)  # restored once more: the note says why everything goes again
    shutil.copyfile(backup, db)
    res = run_cli("upload", str(trace), "--db", str(db), timeout=60)
    assert res.returncode == 0, res.stderr
    note = [ln for ln in res.stderr.splitlines() if ln.startswith("note: the store")]
    assert len(note) == 1 and "every call was sent again" in note[0], res.stderr


def test_two_journals_on_one_store_do_not_take_each_other_for_a_restore(tmp_path: Path) -> None:
    """Two users (two state directories) uploading to one store each keep their own mark."""
    trace, other_trace = _trace(tmp_path / "t.jsonl"), _trace(tmp_path / "o.jsonl", seed=7)
    db = tmp_path / "store.db"
    other_state = str(tmp_path / "other-state")
    assert _upload(trace, db) == (N, 0)
    assert _upload(other_trace, db, XDG_STATE_HOME=other_state) == (N, 0)
    assert _upload(trace, db) == (0, 2 * N)
    assert _upload(other_trace, db, XDG_STATE_HOME=other_state) == (0, 2 * N)
    assert _count(db) == 2 * N


def test_uploads_of_one_journal_at_once_leave_matching_marks(tmp_path: Path) -> None:
    """Stamps of one journal from several processes at once pair up (the journal's lock is
    held across the store's write and the journal's): none is taken for a restore after."""
    db, journal_db = tmp_path / "s.db", tmp_path / "journal.sqlite3"
    key = store_key(db, None)
    Store(db).close()
    errors: list[BaseException] = []

    def stamps() -> None:
        try:
            with (
                Journal.open(server=key, project=None, db_path=journal_db) as journal,
                Store(db) as store,
            ):
                for _ in range(10):
                    guard = StoreGuard.open(journal, store)
                    assert guard is not None and not guard.lost
                    guard.close()
        except BaseException as exc:  # (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=stamps) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with Journal.open(server=key, project=None, db_path=journal_db) as journal, Store(db) as store:
        guard = StoreGuard.open(journal, store)
        assert guard is not None and not guard.lost
        assert StoreGuard.open(journal, object()) is None  # a server keeps no marks


def test_two_uploads_at_once_then_everything_is_skipped(tmp_path: Path) -> None:
    traces = [_trace(tmp_path / "a.jsonl"), _trace(tmp_path / "b.jsonl", seed=7)]
    db = tmp_path / "store.db"
    Store(db).close()
    procs = [
        subprocess.Popen(
            tracecli("upload", str(t), "--db", str(db)),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for t in traces
    ]
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    for t in traces:
        assert _upload(t, db) == (0, 2 * N)
    assert _count(db) == 2 * N


# -- the id itself ---------------------------------------------------------------------------


def test_the_id_is_made_with_the_store_and_lives_in_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as store:  # as `serve` opens it
        made = store.store_id()
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert _store_id_in(db) == made  # written at creation, not on the first ask
    with Store(db) as again:  # as `upload --db` opens it, in another process
        assert again.store_id() == made
    with Store(tmp_path / "t.db") as other, Store(":memory:") as memory:
        assert len({made, other.store_id(), memory.store_id()}) == 3


def test_reading_an_old_store_does_not_write_an_id(tmp_path: Path) -> None:
    """`tail` and export open a store without asking its id: a store from before the id
    (at the current schema) is left as it is."""
    db = tmp_path / "s.db"
    Store(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TABLE store_meta")
    with Store(db, create=False) as store:
        assert store.count(PROJECT) == 0
    with sqlite3.connect(db) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "store_meta" not in names


def test_stores_opened_at_once_agree_on_one_id(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TABLE store_meta")
    stores = [Store(db) for _ in range(6)]  # a connection each, as separate processes have
    barrier = threading.Barrier(len(stores))
    ids: list[str] = []

    def ask(store: Store) -> None:
        barrier.wait()
        ids.append(store.store_id())

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    assert len(ids) == len(stores) and len(set(ids)) == 1
    assert _store_id_in(db) == ids[0]


def test_the_key_names_the_path_and_the_id() -> None:
    a, b = store_key("/x/s.db", "a" * 32), store_key("/x/s.db", "b" * 32)
    assert a != b and a.startswith("sqlite:///x/s.db")
    assert target_key(a, None) != target_key(b, None)
    assert store_key("/x/s.db", None) == "sqlite:///x/s.db"  # --dry-run: no store opened
