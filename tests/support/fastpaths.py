"""The fast paths switched off, and one file run through every path with them on and off.

validate's typed decoder (`validate_blocks.SHAPES`, switched as tests/test_typed.py does),
upload's (`blocks._prepare_lines`: `prepare_each` reads every line, --project or not),
upload's quick pair path (`Run._quick`), the store's body reader (`local.completed_rows`)
and OTLP's usual-span reader (`otel.spans._quick_span`, `quick_attributes`) each have a
general path that answers for them; `audit` holds a file to the same answers both ways
(tests/test_producers_audit.py, tests/test_producers_sdk.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tracecli.upload.run as run_mod
import tracecli.upload.validate as validate_mod
from tracecli.otel import spans as otel_spans
from tracecli.targets import local
from tracecli.upload import blocks
from tracecli.upload import validate_blocks as vb
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.run import Run
from tracecli.upload.validate import validate_paths

TINY_BLOCK = 997  # bytes: smaller than most records, so boundaries fall everywhere
VOLATILE = ("elapsed_s", "calls_per_s", "target", "rejected_file", "peak_open_calls")


@contextmanager
def general_paths(typed: bool = True, quick: bool = True, otlp: bool = True) -> Iterator[None]:
    """The fast paths switched off where asked (each back on at the end)."""
    saved = (vb.SHAPES, Run._quick, local.completed_rows)
    saved_otlp = (otel_spans._quick_span, otel_spans.quick_attributes)
    saved_lines = blocks._prepare_lines
    if not typed:
        vb.SHAPES = dict.fromkeys(saved[0])  # type: ignore[misc]
        blocks._prepare_lines = blocks.prepare_each
    if not quick:
        Run._quick = lambda self: None  # type: ignore[method-assign]
        local.completed_rows = lambda body: None
    if not otlp:
        otel_spans._quick_span = lambda raw, resource: None
        otel_spans.quick_attributes = lambda items: None
    try:
        yield
    finally:
        vb.SHAPES, Run._quick, local.completed_rows = saved  # type: ignore[misc,method-assign]
        otel_spans._quick_span, otel_spans.quick_attributes = saved_otlp
        blocks._prepare_lines = saved_lines


@contextmanager
def blocks_of(validate_bytes: int, upload_bytes: int) -> Iterator[None]:
    saved = validate_mod.BLOCK_BYTES, run_mod.BLOCK_BYTES
    validate_mod.BLOCK_BYTES, run_mod.BLOCK_BYTES = validate_bytes, upload_bytes
    try:
        yield
    finally:
        validate_mod.BLOCK_BYTES, run_mod.BLOCK_BYTES = saved


def verdict(path: Path) -> tuple[Any, ...]:
    r = validate_paths([str(path)], jobs=0, max_errors=0)
    diags = sorted((d.line, d.field, d.code, d.severity.value, d.message) for d in r.diagnostics)
    return r.records, r.calls, r.errors, r.warnings, diags


def stored_rows(db: Path) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM calls ORDER BY id").fetchall()


def uploaded(path: Path, work: Path, **kw: Any) -> tuple[Any, ...]:
    """upload's report, rejected file and stored rows, into a fresh store in `work`."""
    work.mkdir()
    opts = UploadOptions(
        db=work / "s.db", rejected=work / "rej.jsonl", journal_path=work / "j.db", jobs=0, **kw
    )
    report = upload([str(path)], opts).to_dict()
    for key in VOLATILE:
        report.pop(key, None)
    rejected = work / "rej.jsonl"
    text = rejected.read_bytes().replace(str(work).encode(), b"W") if rejected.exists() else b""
    return report, text, stored_rows(work / "s.db")


def audit(path: Path, tmp: Path, **kw: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Every fast path against its general path on one file: (verdict, upload outcome)."""
    fast = verdict(path)
    with general_paths(typed=False):
        assert verdict(path) == fast, "typed decoder"
    with blocks_of(TINY_BLOCK, TINY_BLOCK):
        assert verdict(path) == fast, "validate's blocks"
        small = uploaded(path, tmp / "small", **kw)
    sent = uploaded(path, tmp / "fast", **kw)
    with general_paths(typed=False, quick=False):
        general = uploaded(path, tmp / "general", **kw)
    assert sent == general, "upload's quick path / the store's body reader"
    assert small == sent, "upload's blocks"
    if not kw.get("strict"):  # (strict counts warnings as errors)
        assert sent[0]["errors"] == fast[2], (sent[0]["diagnostics"][:5], fast[4][:5])
    return fast, sent
