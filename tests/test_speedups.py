"""The compiled block search (`tracecli/_speedups.c`) held to the pure-Python one.

`upload.typed_lines.block_bytes` uses `tracecli._speedups.scan_block` when the install
built it, else `block_bytes_py`; nothing may differ but the time. These tests want the two
searches to answer alike on any bytes (hostile ones included: NUL, truncated lines,
escapes, bytes that are not UTF-8, a huge line), validate's blocks to come out the same
either way, and the compiled one to keep nothing (no reference or memory left behind).
Skipped where the extension was not built (a system without a C compiler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bulk_kit import outcome
from tests.support.validate_kit import end, new_id, start
from tracecli.schema import fastcheck
from tracecli.upload import typed_lines
from tracecli.upload.typed_lines import OPENER, PURE_PYTHON_ENV, block_bytes_py
from tracecli.wire.wideints import DEEP_BRACKETS

speedups = pytest.importorskip("tracecli._speedups")
scan_block = speedups.scan_block


def _reference(data: bytes, deep: int) -> tuple[bool, bool, list[int], list[int]]:
    """What `scan_block` must say, from the pure-Python search: its refs, text and
    numbers, and the lines whose openers the loops would count as `deep` or more."""
    b = block_bytes_py(data)
    assert b.translated is not None
    lines = b.translated.split(b"\n")
    deeps = [n for n, line in enumerate(lines, 1) if line.count(OPENER) >= deep]
    return b.refs, b.text, sorted(b.numbers), deeps


def _same(data: bytes, deep: int = DEEP_BRACKETS) -> None:
    assert scan_block(data, deep) == _reference(data, deep), data[:200]


# what the searches look at, and what is near it
_BITS = st.sampled_from(
    [
        *(bytes([c]) for c in b'0159eE+-.,}] \t\r\n[{"\\uwx:'),
        b"weave",
        b'"weave',
        b"\\u0077",
        b"\\u0065",
        b"\\u0061",
        b"\\u0076",
        b"\\u006",
        b"\\u0057",
        b"\x00",
        b"\xff",
        b"\xc3\xa9",
        b"\xef\xbb\xbf",
        b"1e400",
        b"1E+309",
        b"0" * 19,
        b"9" * 21,
        b"[" * 7,
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_BITS, max_size=40), st.integers(1, 9))
def test_the_compiled_search_is_the_pure_one_on_near_misses(bits: list[bytes], deep: int) -> None:
    _same(b"".join(bits), deep)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 300))
def test_the_compiled_search_is_the_pure_one_on_any_bytes(data: bytes, deep: int) -> None:
    _same(data, deep)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"\n\n\n",
        b"1e400",  # truncated: no terminator, no newline
        b"1e400\n",
        b'{"x": 1e400',
        b'{"x": 1e400}',
        b'{"x": "\\u0077eave"}\n{"y": 1}',
        b"\\",
        b"\\u007",
        b'"weav',
        b'"weave',
        b"\x00" * 100 + b"\n" + b"1" * 20 + b"\x00",
        b"\xef\xbb\xbf" + b"[" * DEEP_BRACKETS + b"\n" + b"{" * (DEEP_BRACKETS - 1),
        b"[" * (DEEP_BRACKETS * 2) + b"\n" + b"[" * 300,
        b"7" * 10_000,  # one long line of digits
        (b"e123," * 500 + b"\n") * 3,
    ],
)
def test_the_compiled_search_on_hostile_blocks(data: bytes) -> None:
    _same(data)


def test_the_compiled_search_on_a_huge_line() -> None:
    """A line of 4 MB: the pure search counts a line for each number it finds (from the
    block's start), so the numbers are few here."""
    line = b'{"x": "' + b"ab\\u0077 weave [{ 1e2 \xff" * 200_000 + b" 12345678901234567890"
    _same(line + b'"}\n' + line)


def test_the_compiled_search_refuses_what_is_not_bytes() -> None:
    for args in [("x", 1), (bytearray(b"x"), 1), (b"x",), (b"x", "1"), (b"x", 2**70), ()]:
        with pytest.raises((TypeError, OverflowError)):
            scan_block(*args)


def test_the_compiled_search_keeps_nothing() -> None:
    """No reference to its input nor memory kept, however many blocks it reads."""
    data = (b'{"a": [1e400, "\\u0077eave"], "b": "' + b"9" * 30 + b'"}\n') * 50 + b"[" * 300
    before = sys.getrefcount(data)
    scan_block(data, 3)  # (the caches of ints and lists filled once)
    tracemalloc.start()
    try:
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(3000):
            scan_block(data, 3)
        last, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sys.getrefcount(data) == before
    assert last - first < 10_000


def _block() -> bytes:
    """A block with a bit of everything the search flags, among plain records."""
    trace = new_id()
    rows: list[Any] = []
    for i in range(6):
        cid = new_id()
        inputs: dict[str, Any] = {"q": "plain"}
        if i == 1:
            inputs = {"n": 10**25}  # a number the typed decoder does not size
        if i == 2:
            inputs = {"x": "weave:///e/p/op/f:1"}
        if i == 3:
            inputs = {"x": "caf\u00e9"}
        rows.append(start(cid, trace, inputs=inputs))
        rows.append(end(cid, output={"d": [[[[1]]]] if i == 4 else 1}))
    lines = [json.dumps(r).encode() for r in rows]
    deep = b"[" * DEEP_BRACKETS + b"]" * DEEP_BRACKETS
    lines[0] = lines[0].replace(b'"q": "plain"', b'"q": ' + deep)  # (nests deep: orjson's)
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_validate_reads_a_block_alike_either_way(
    bom: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bom + _block()
    fastcheck._ok_call_ids.clear()
    compiled = outcome(data)
    monkeypatch.setattr(typed_lines, "_scan_block", None)
    fastcheck._ok_call_ids.clear()
    assert outcome(data) == compiled


def test_the_environment_variable_turns_the_compiled_search_off() -> None:
    code = "from tracecli.upload import typed_lines as t; print(t._scan_block is None)"
    env = {**os.environ, PURE_PYTHON_ENV: "1"}
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert got.stdout.strip() == "True", got.stderr
    env[PURE_PYTHON_ENV] = "0"
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert got.stdout.strip() == "False", got.stderr
