"""The ledger of acknowledged Freeplay records (tracecli.journal.freeplay_ledger), on its own.

The behaviour it gives the upload (a grown file does not re-send, a record twice in a run
goes once, kill -9 re-sends at most the requests in flight) is tested against the real
reference server in test_freeplay_upload.py; here, what it stores and answers.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from tracecli.journal.freeplay_ledger import (
    LEDGER_NAME,
    STDIN_KEY,
    SentLedger,
    record_key,
    source_key,
)

P = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
C = "11111111-2222-4333-8444-555555555555"


def test_a_record_is_known_by_project_kind_and_id() -> None:
    assert record_key(P, "completions", C) == record_key(P.upper(), "completions", C.upper())
    assert record_key(P, "completions", C) != record_key(P, "traces", C)
    other = "5b7d2a2f-9c1b-4b8f-8a62-4c2e3d0f8a21"
    assert record_key(P, "completions", C) != record_key(other, "completions", C)


def test_seen_from_the_same_file_and_in_this_run(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("")
    b.write_text("")
    key = record_key(P, "completions", C)
    src_a = source_key([str(a)])
    assert source_key([str(tmp_path / "." / "a.jsonl")]) == src_a  # the real path counts
    assert source_key([str(a), str(b)]) == source_key([str(b), str(a)])
    ledger = SentLedger.open(tmp_path / LEDGER_NAME, "http://127.0.0.1:8787/api")
    before = time.time()
    assert not ledger.seen_from(key, src_a) and not ledger.seen_since(key, before)
    ledger.add(key, src_a)
    assert ledger.seen_from(key, src_a)
    assert not ledger.seen_from(key, source_key([str(b)]))  # another path: another upload
    assert ledger.seen_since(key, before)  # ...but not twice in one run
    assert not ledger.seen_since(key, time.time() + 1)  # a later run (--restart)
    ledger.close()
    mode = stat.S_IMODE(os.stat(tmp_path / LEDGER_NAME).st_mode)
    assert mode == 0o600


def test_per_api_base_and_stdin(tmp_path: Path) -> None:
    key = record_key(P, "traces", C)
    one = SentLedger.open(tmp_path / LEDGER_NAME, "http://127.0.0.1:8787/api")
    one.add(key, STDIN_KEY)
    one.close()
    again = SentLedger.open(tmp_path / LEDGER_NAME, "http://user:secret@127.0.0.1:8787/api/")
    assert again.seen_since(key, 0)  # the same base (credentials and a trailing / aside)
    again.close()
    other = SentLedger.open(tmp_path / LEDGER_NAME, "https://app.freeplay.ai/api")
    assert not other.seen_since(key, 0)
    other.close()
    assert b"secret" not in (tmp_path / LEDGER_NAME).read_bytes()
