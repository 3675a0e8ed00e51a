"""Integers beyond 64 bits: reported, never silently changed (tracecli.wideints)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.uploadkit import gen_calls, write_flat
from tracecli.store import Store
from tracecli.upload import UploadOptions, upload
from tracecli.validate import validate_paths
from tracecli.wideints import may_hold_wide_ints, wide_ints

BIG = 123456789012345678901234567890


def test_only_integers_outside_orjsons_exact_range_are_named():
    assert not may_hold_wide_ints(b'{"a": 123456789012345678, "id": "0123-4567"}')
    assert may_hold_wide_ints(b'{"a": 1234567890123456789}')
    raw = json.dumps(
        {"a": {"b": [1, BIG]}, "ok": 2**64 - 1, "neg": -(2**63) - 1, "f": 0.12345678901234567891}
    ).encode()
    assert sorted(wide_ints(raw)) == [("a.b.1", BIG), ("neg", -(2**63) - 1)]
    assert wide_ints(b'{"s": "12345678901234567890123"}') == []  # a string is kept as it is
    assert orjson.loads(b"18446744073709551615") == 2**64 - 1  # the edge orjson keeps


def bad_file(tmp_path: Path) -> Path:
    calls = gen_calls(20, seed=51)
    calls[3][0]["inputs"] = {"seed": "BIG"}
    path = write_flat(tmp_path / "t.jsonl", calls)  # (orjson cannot write it either)
    path.write_text(path.read_text().replace('"BIG"', str(BIG)))
    return path


def test_validate_names_the_field_and_upload_rejects_the_call_whole(tmp_path: Path) -> None:
    path = bad_file(tmp_path)
    report = validate_paths([str(path)], jobs=1)
    assert [(d.field, d.code) for d in report.diagnostics] == [("inputs.seed", "int-range")]
    assert "does not fit in 64 bits" in report.diagnostics[0].message

    db = tmp_path / "store.db"
    rej = tmp_path / "rejected.jsonl"
    up = upload([str(path)], UploadOptions(db=db, rejected=rej, journal_path=tmp_path / "j.db"))
    assert (up.exit_code, up.uploaded, up.rejected) == (1, 19, 2)  # the start and its end
    with Store(db) as s:
        stored = list(s.query("acme/chaos"))
    assert len(stored) == 19
    assert all("seed" not in (c.get("inputs") or {}) for c in stored)
    assert str(BIG) in rej.read_text()  # kept exactly as read, to fix and upload again
