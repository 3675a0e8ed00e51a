"""The OTLP fast paths hold to the formulas they replace (weave's, as written before).

Pure functions, checked with hypothesis against the slow code they stand in for: a fast
path that drifts by one microsecond or one JSON value would show as a differing call.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.otel_spans import ANY_VALUES as _any_values
from tests.support.otel_spans import ATTRIBUTE_LISTS as _attribute_lists
from tests.support.otel_spans import CHANGES as _CHANGES
from tests.support.otel_spans import SPANS as _SPANS
from tests.support.otel_spans import same_values as _same
from tests.support.sweeps import examples
from tracecli.diagnostics import Severity
from tracecli.otel.anyvalue import FieldError
from tracecli.otel.nesting import has_wide_digits, load_json_text
from tracecli.otel.spans import decode_span
from tracecli.otel.weave_keys import iso_from_ns, utc_from_seconds
from tracecli.store.db import Store
from tracecli.upload import otlp_blocks, otlp_entry, otlp_map
from tracecli.upload.api import upload
from tracecli.upload.blocks import Bad
from tracecli.upload.report import UploadOptions
from tracecli.upload.validate import validate_paths

UINT64_MAX = 2**64 - 1


def _slow_iso(ns: int) -> str:
    return utc_from_seconds(ns / 1_000_000_000).isoformat()


@pytest.mark.slow
@settings(max_examples=examples(1000))
@given(
    st.one_of(
        st.integers(0, UINT64_MAX),
        # real spans: now-ish, every nanosecond digit
        st.integers(1_600_000_000 * 10**9, 1_900_000_000 * 10**9),
        # the rounding edges: just below and above a half or a whole microsecond
        st.builds(
            lambda s, us, d: s * 10**9 + us * 1000 + d,
            st.integers(0, 4_000_000_000),
            st.integers(0, 999_999),
            st.sampled_from([0, 1, 499, 500, 501, 999]),
        ),
    )
)
def test_iso_from_ns_is_fromtimestamp(ns: int) -> None:
    assert iso_from_ns(ns) == _slow_iso(ns)


def test_iso_from_ns_edges() -> None:
    for ns in (0, 1, 999, 500, 1500, 999_999_999, 10**9 - 1, 10**9, UINT64_MAX):
        assert iso_from_ns(ns) == _slow_iso(ns), ns
    assert iso_from_ns(1772445245000112014) == "2026-03-02T09:54:05.000112"
    assert json.dumps(iso_from_ns(0)) == '"1970-01-01T00:00:00"'


def _slow_load(text: str) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.slow
@settings(max_examples=examples(800), deadline=None)  # (a busy machine stalls one example)
@given(
    st.one_of(
        _json_values.map(lambda v: json.dumps([v])),
        _json_values.map(lambda v: json.dumps({"k": v, "x": [v]}, ensure_ascii=False)),
        # text that looks like JSON but may not be: cut, spaced, doubled keys, escapes
        st.text(alphabet='[]{}",:0123456789.eE+-aNInfity \\t\\n\\u', max_size=40).map(
            lambda t: "[" + t
        ),
        st.lists(st.integers(-(2**66), 2**66), max_size=3).map(
            lambda v: '{"a":' + json.dumps(v) + ',"a":1}'
        ),
    )
)
def test_load_json_text_is_json_loads(text: str) -> None:
    assert _same(load_json_text(text), _slow_load(text))


def test_load_json_text_edges() -> None:
    for text in (
        "[18446744073709551616]",
        "[-9223372036854775809]",
        "[1e400]",
        '["\\ud800"]',
        '["\ud800"]',  # a lone surrogate in the text itself (msgspec cannot encode it)
        "[" + "1" * 4297 + "]",  # read by msgspec: text under the stdlib's 4,300 digits
        "[" + "1" * 4299 + "]",  # read the old way
        "[1.5E+3, 0.1e1, -0, 1e-400, 123456789012345678901234567890.5]",
        "[NaN, Infinity, -Infinity]",
        '{"a": 1, "a": 2}',
        "[" * 2000 + "]" * 2000,
        "[1] x",
        "{",
        '["a\tb"]',
    ):
        assert _same(load_json_text(text), _slow_load(text)), text


_WIDE_DIGITS_RE = re.compile(r"[0-9]{19}")  # what `has_wide_digits` stands in for
# runs of digits just short of, at and past 19, among other text: ASCII and other digits
_digit_runs = st.lists(
    st.one_of(
        st.integers(0, 21).map(lambda n: "7" * n),
        st.text(alphabet="0123456789", min_size=17, max_size=21),
        st.text(alphabet="0123456789\u0660\u0669\uff10\U0001d7ce\u00b2", max_size=25),
        st.text(max_size=8),  # anything, lone surrogates included
    ),
    max_size=6,
).map("".join)


@settings(max_examples=examples(400))
@given(st.one_of(_digit_runs, st.text()))
def test_has_wide_digits_is_the_regex(text: str) -> None:
    assert has_wide_digits(text) == (_WIDE_DIGITS_RE.search(text) is not None)


def test_has_wide_digits_edges() -> None:
    for n, wide in ((18, False), (19, True), (20, True)):
        for text in ("1" * n, "x" + "9" * n + "y", "\ud800" + "0" * n + "\u0660"):
            assert has_wide_digits(text) is wide, text
    assert not has_wide_digits("\u0660" * 19)  # Arabic-Indic digits: not JSON's
    assert not has_wide_digits("\uff11" * 19)  # fullwidth digits
    assert not has_wide_digits("123456789 1234567890")  # two runs, neither 19 long
    assert not has_wide_digits("")


# -- OTLP lines mapped by worker processes: the answer of one process ----------------------
FIXTURES = Path(__file__).parent / "otel_fixtures"
MAIN_PID = os.getpid()
_real_map_lines = otlp_map.map_lines


def _otlp_file(tmp: Path) -> Path:
    """Agent traces and the hand-made conventions (refused spans, a missing parent), and a
    line that is no JSON: every kind of entry, in many blocks."""
    lines = [
        *gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes()).splitlines(),
        b"{not json",
        *(FIXTURES / "conventions.jsonl").read_bytes().splitlines(),
        *gzip.decompress((FIXTURES / "agent-seed2.jsonl.gz").read_bytes()).splitlines(),
    ]
    path = tmp / "spans.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _summary(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    for key in ("elapsed_s", "calls_per_s", "target", "rejected_file", "peak_open_calls"):
        d.pop(key, None)
    return d


def test_upload_in_workers_is_the_upload_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _otlp_file(tmp_path)
    monkeypatch.setattr(otlp_blocks, "BLOCK_BYTES", 4096)
    monkeypatch.setattr("tracecli.upload.pool.PARALLEL_MIN_BYTES", 0)
    got = []
    for jobs, fragile in ((0, False), (2, False), (2, True)):
        if fragile:  # a worker dies on its second block: this process does its work
            monkeypatch.setattr(otlp_blocks, "map_lines", _fragile)
        d = tmp_path / f"jobs{jobs}{fragile}"
        d.mkdir()
        opts = UploadOptions(
            project="acme/otel",
            db=d / "store.db",
            rejected=d / "rejected.jsonl",
            journal_path=d / "journal.db",
            jobs=jobs,
        )
        report = upload([str(src)], opts)
        with Store(d / "store.db") as store:
            calls = sorted(orjson.dumps(c) for c in store.query("acme/otel"))
        got.append((_summary(report), calls, (d / "rejected.jsonl").read_bytes()))
    assert got[0][0]["uploaded"] > 50 and got[0][0]["rejected"] >= 4
    assert got[0] == got[1] == got[2]


def _fragile(lines: Any, *args: Any) -> Any:
    """map_lines, except that a worker dies on its second block (OOM killer, kill -9)."""
    if os.getpid() != MAIN_PID and lines[0][0] > 1:
        os._exit(3)
    return _real_map_lines(lines, *args)


def test_validate_in_workers_even_one_that_dies_is_validate_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = str(_otlp_file(tmp_path))
    serial = validate_paths([src], jobs=0, max_errors=0).to_dict()
    assert serial["errors"] >= 4 and serial["warnings"] >= 1
    monkeypatch.setattr(otlp_blocks, "BLOCK_BYTES", 4096)
    monkeypatch.setattr("tracecli.upload.validate.PARALLEL_MIN_BYTES", 0)
    assert validate_paths([src], jobs=2, max_errors=0).to_dict() == serial
    monkeypatch.setattr(otlp_blocks, "map_lines", _fragile)
    assert validate_paths([src], jobs=2, max_errors=0).to_dict() == serial


_LOG: list[Path] = []  # where `_logged` writes (set before the worker is forked)


def _logged(lines: Any, *args: Any) -> Any:
    """map_lines that notes which process mapped each block (its first line and pid)."""
    with _LOG[0].open("a") as f:
        f.write(f"{lines[0][0]} {os.getpid()}\n")
    return _real_map_lines(lines, *args)


@pytest.mark.parametrize("validate", [False, True])
def test_blocks_go_to_the_worker_first_and_come_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validate: bool
) -> None:
    """The worker always has blocks queued (the first `QUEUED` go to it before the reading
    process maps one itself), each block is mapped once, and the lines come back in the
    file's order, as mapping them all in one process gives them."""
    from tracecli.inputs.workers import fork_pool, stop_pool

    src = _otlp_file(tmp_path)
    monkeypatch.setattr(otlp_blocks, "BLOCK_BYTES", 2048)
    blocks = list(otlp_blocks.line_blocks(str(src), "spans.jsonl"))
    assert len(blocks) > 3 * otlp_blocks.QUEUED
    serial = otlp_blocks.Workers(lambda: None, 0, lambda: None, lambda: False)
    want = list(otlp_blocks.map_blocks(iter(blocks), "spans.jsonl", "acme/otel", serial, validate))
    log = tmp_path / "mapped.log"
    monkeypatch.setattr(otlp_blocks, "map_lines", _logged)
    monkeypatch.setattr(f"{__name__}._LOG", [log])
    pool = fork_pool(1)  # (after the patch: the forked worker maps with it too)
    assert pool is not None
    try:
        workers = otlp_blocks.Workers(lambda: pool, 1, lambda: None, lambda: False)
        got = list(
            otlp_blocks.map_blocks(iter(blocks), "spans.jsonl", "acme/otel", workers, validate)
        )
    finally:
        stop_pool(pool, False)
    assert got == want
    by = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(first) for first, _ in by) == [b[0][0] for b in blocks]  # each once
    firsts = {int(first): pid for first, pid in by}
    worker = {firsts[b[0][0]] for b in blocks[: otlp_blocks.QUEUED]}
    assert worker != {str(MAIN_PID)} and len(worker) == 1


def _records(parts: list[otlp_map.LineParts]) -> list[Any]:
    """A block's answer with the type of every record in it, nested ones included."""

    def typed(v: Any) -> Any:
        if isinstance(v, tuple):
            return (type(v).__name__, *map(typed, v))
        if isinstance(v, list):
            return [typed(x) for x in v]
        return v

    return typed(parts)


@pytest.mark.parametrize("validate", [False, True])
def test_a_mapped_block_unpickles_to_the_same_named_records(tmp_path: Path, validate: bool) -> None:
    """What a worker sends back is rebuilt as the records it mapped: the same fields, the
    same named tuples (entries Ok, Bad, validate's lists, refused spans, lines that are
    no JSON, a block with a reference-like string)."""
    src = _otlp_file(tmp_path)
    lines = list(enumerate(src.read_bytes().splitlines(keepends=True), 1))
    lines.append((len(lines) + 1, lines[0][1].replace(b'"gen_ai.system"', b'"weave:///x"')))
    mapped = otlp_map.map_lines(lines, str(src), "acme/otel", validate)
    bad = Bad(9, {"id": "x"}, (("id", "c", Severity.ERROR, "m"),), "x")  # (a call refused)
    part = otlp_map.SpanPart(1, "spans[0]", "ab" * 8, None, "cd" * 16, "e/p", None, None, bad)
    mapped.lines.append(otlp_map.LineParts(9, b"", [part]))
    entries = {type(s.entry).__name__ for p in mapped.lines for s in p.spans}
    assert entries >= ({"list", "NoneType", "Bad"} if validate else {"Ok", "Bad", "NoneType"})
    assert any(p.error for p in mapped.lines) and any(
        s.refused for p in mapped.lines for s in p.spans
    )
    back = pickle.loads(pickle.dumps(mapped, protocol=pickle.HIGHEST_PROTOCOL))
    assert _records(back.lines) == _records(mapped.lines)
    assert pickle.loads(pickle.dumps(otlp_map.Mapped([]))).lines == []


@settings(max_examples=examples(500))
@given(
    st.lists(st.sampled_from([b"\n", b"a", b"{}", b"\r", b"\r\n", b"\xef\xbb\xbf", b"x" * 40])),
    st.sampled_from([1, 2, 3, 7, 64]),
)
def test_lines_read_in_chunks_are_the_files_lines(pieces: list[bytes], chunk: int) -> None:
    """OTLP lines read in chunks are the lines iterating the file gives, byte for byte."""
    import io

    from tracecli.upload import otlp_lines

    data = b"".join(pieces)
    real = otlp_lines.READ_BYTES
    otlp_lines.READ_BYTES = chunk
    try:
        for stream in (io.BytesIO(data), io.BufferedReader(io.BytesIO(data), 8)):
            assert list(otlp_lines._lines(stream)) == list(io.BytesIO(data))
    finally:
        otlp_lines.READ_BYTES = real


def test_a_span_wrong_in_two_places_is_told_its_first_field() -> None:
    """The fast attribute reader runs after the fields before it: their error comes first."""
    clash = [
        {"key": "a", "value": {"intValue": "1"}},
        {"key": "a.b", "value": {"intValue": "2"}},
    ]
    span = {"traceId": "xyz", "spanId": "0000000000000001", "name": "n", "attributes": clash}
    with pytest.raises(FieldError) as exc:
        decode_span(span, None)
    assert exc.value.field == "traceId"
    span = {**span, "traceId": "0" * 32, "flags": "x"}
    with pytest.raises(FieldError) as exc:
        decode_span(span, None)
    assert exc.value.field == "flags"
    del span["flags"]
    with pytest.raises(FieldError) as exc:
        decode_span(span, None)
    assert exc.value.field == "attributes[1].key"


# -- attribute lists: the one-pass reader (and its per-shape builders) is weave's expansion --


@settings(max_examples=examples(600))
@given(_attribute_lists)
def test_quick_attributes_are_weaves_expansion(items: list[dict[str, Any]]) -> None:
    """Each shape is read three times: nested key by key, then by its built function."""
    from tracecli.otel.anyvalue import key_values
    from tracecli.otel.attrlist import impure_keys, quick_attributes
    from tracecli.otel.nesting import PathConflictError, expand_attributes

    raw = orjson.dumps(items)
    try:
        expected: Any = expand_attributes(key_values(orjson.loads(raw), "attributes"))
    except (PathConflictError, FieldError):
        expected = None
    for _ in range(3):
        got = quick_attributes(orjson.loads(raw))
        if got is None:  # the general reader's to answer: it may refuse
            continue
        assert expected is not None
        assert _same(got[0], expected), (got[0], expected)
        assert got.impure == impure_keys(orjson.loads(raw))
        assert got.keys == tuple(kv["key"] for kv in items)


# -- whole spans: the usual span's reader is decode_span's general reader ------------------


def _decoded(raw: Any) -> Any:
    try:
        span = decode_span(raw, None)
    except FieldError as exc:
        return ("error", exc.field, exc.message)
    d = span.__dict__.copy()
    d["dump"] = span.otel_dump()
    return d


@settings(max_examples=examples(300))
@given(st.sampled_from(range(len(_SPANS))), st.lists(_CHANGES, max_size=3))
def test_quick_span_is_decode_span(n: int, changes: list[tuple[str, Any]]) -> None:
    from tracecli.otel import spans

    raw = orjson.loads(orjson.dumps({**_SPANS[n], **dict(changes)}))
    quick = _decoded(orjson.loads(orjson.dumps(raw)))
    real = spans._quick_span
    spans._quick_span = lambda raw, resource: None  # type: ignore[assignment]
    try:
        general = _decoded(raw)
    finally:
        spans._quick_span = real
    assert quick == general


# -- validate's fast check for calls whose impure values no pick reads -----------------------
_PICKY_KEYS = st.sampled_from(
    ["app.fp", "app", "gen_ai.input.messages", "gen_ai.request", "gen_ai.request.seed",
     "gen_ai", "input", "output.value", "wandb.attributes", "llm", "a.b"]
)  # fmt: skip
_IMPURE_VALUES = st.one_of(
    _any_values,
    st.sampled_from(
        [
            {"bytesValue": "AAE="},
            {"stringValue": '{"a": NaN}'},
            {"stringValue": "[Infinity]"},
            {"doubleValue": "NaN"},
            {"arrayValue": {"values": [{"bytesValue": "AAE="}]}},
            {"kvlistValue": {"values": [{"key": "k", "value": {"bytesValue": "/w=="}}]}},
        ]
    ),
)


def _json_own(value: Any) -> bool:
    """Only values JSON writes as they are: no bytes, no NaN or infinity."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return all(_json_own(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_own(v) for v in value)
    return value is None or isinstance(value, (str, int, bool))


@settings(max_examples=examples(400))
@given(
    st.sampled_from(range(len(_SPANS))),
    st.lists(
        st.tuples(_PICKY_KEYS, _IMPURE_VALUES).map(lambda kv: {"key": kv[0], "value": kv[1]}),
        max_size=3,
    ),
)
def test_a_plain_call_is_checked_as_the_full_check_does(
    n: int, extra: list[dict[str, Any]]
) -> None:
    """`plain_call` says yes only for calls of JSON's own values, and for those validate's
    fast check gives the full check's entries."""
    import copy

    from tracecli.otel.to_weave import MappingError, plain_call, span_to_call
    from tracecli.upload.otlp_lines import checked
    from tracecli.upload.validate_blocks import _settle_times

    # as a line is read (orjson: no NaN or infinity but as text)
    raw = {**_SPANS[n], "attributes": [*_SPANS[n].get("attributes", []), *extra]}
    raw = orjson.loads(orjson.dumps(raw))
    try:
        span = decode_span(raw, None)
        call = span_to_call(span, "acme/otel")
    except (FieldError, MappingError):
        return
    if not plain_call(span):
        return
    assert _json_own(call)
    fast = checked(copy.deepcopy(call), 1, "f", "spans[0]", True)
    full = checked(copy.deepcopy(call), 1, "f", "spans[0]", False)
    # the same once a block settles them (the fast check's times are text until then)
    assert _settle_times(list(fast)) == _settle_times(list(full))


def test_a_bytes_value_no_pick_reads_leaves_the_call_plain() -> None:
    from tracecli.otel.to_weave import plain_call

    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "n"}
    for key, plain in (("app.fingerprint", True), ("gen_ai.request.seed", False),
                       ("gen_ai", False), ("input", False), ("inputs.x", False)):  # fmt: skip
        attrs = [{"key": key, "value": {"bytesValue": "AAE="}}]
        decoded = decode_span({**span, "attributes": attrs}, None)
        assert not decoded.plain and decoded.impure == (key,)
        assert plain_call(decoded) is plain, key


# -- upload's entry of a converted call, built without `prepare`'s steps it does not need --
_CALL_TWEAKS = st.sampled_from(
    [
        ("wandb.display_name", {"stringValue": "d" * 2000}),
        ("wandb.display_name", {"stringValue": "short"}),
        ("wandb.wb_run_id", {"stringValue": "run-1"}),
        ("wandb.wb_run_id", {"stringValue": "a/b"}),
        ("wandb.wb_run_step", {"stringValue": str(2**63)}),
        ("wandb.wb_run_step", {"intValue": "7"}),
        ("wandb.wb_run_step_end", {"intValue": "9223372036854775807"}),
        ("gen_ai.request.model", {"intValue": "3"}),
        ("gen_ai.usage.input_tokens", {"stringValue": "3"}),
        ("gen_ai.usage.output_tokens", {"doubleValue": 2.5}),
        ("gen_ai.conversation.id", {"bytesValue": "AAE="}),
        ("wandb.attributes", {"stringValue": '{"a": 1}'}),
        ("input.value", {"stringValue": "weave:///e/p/op/x:1"}),
        ("gen_ai.input.messages", {"doubleValue": float("nan")}),
    ]
).map(lambda kv: {"key": kv[0], "value": kv[1]})


@settings(max_examples=examples(400))
@given(
    st.sampled_from(range(len(_SPANS))),
    st.lists(_CHANGES, max_size=2),
    st.lists(_CALL_TWEAKS, max_size=3),
    st.sampled_from(["acme/otel", "acme", "a/b/c", "x" * 300 + "/p"]),
)
def test_a_converted_calls_built_entry_is_prepares(
    n: int, changes: list[tuple[str, Any]], extra: list[dict[str, Any]], project: str
) -> None:
    """The entry upload builds for a converted call without `prepare` is the one `prepare`
    makes (same fields, an `Ok`), whenever it answers."""
    import copy

    from tracecli.otel.to_weave import MappingError, span_to_call
    from tracecli.upload.blocks import Ok

    raw = {**_SPANS[n], **dict(changes)}
    raw["attributes"] = [*(raw.get("attributes") or []), *extra]
    raw = orjson.loads(orjson.dumps(raw))
    try:
        call = span_to_call(decode_span(raw, None), project)
    except (FieldError, MappingError):
        return
    call["summary"] = {"usage": call["summary"]["usage"]}
    built = otlp_entry._built_entry(copy.deepcopy(call), 7)
    prepared = otlp_entry._prepared_entry(copy.deepcopy(call), 7, "f", "spans[0]", raw, True)
    if built is not None:
        assert type(prepared) is Ok and tuple(built) == tuple(prepared)


def test_a_converted_calls_entry_is_built_for_the_usual_spans() -> None:
    from tracecli.otel.to_weave import MappingError, span_to_call
    from tracecli.upload.blocks import Ok

    built = 0
    for raw in _SPANS:
        try:
            call = span_to_call(decode_span(raw, None), "acme/otel")
        except (FieldError, MappingError):
            built += 1  # (refused before any entry)
            continue
        call["summary"] = {"usage": call["summary"]["usage"]}
        entry = otlp_entry._built_entry(call, 1)
        built += entry is not None
        assert entry is None or type(entry) is Ok
    assert built >= len(_SPANS) * 0.9


_TYPED_TWEAKS = st.one_of(
    _CALL_TWEAKS,
    st.sampled_from(
        [
            ("gen_ai.conversation.id", {"stringValue": "conv-1"}),
            ("wandb.is_turn", {"boolValue": True}),
            ("gen_ai.usage.input_tokens", {"intValue": "3"}),
            ("gen_ai.usage.output_tokens", {"intValue": "4"}),
            ("gen_ai.response.model", {"stringValue": "m"}),
            ("langfuse.startTime", {"stringValue": "2024-02-30T00:00:00"}),
            ("langfuse.endTime", {"stringValue": "2024-01-01T00:00:00+02:00"}),
            ("langfuse.startTime", {"intValue": "1700000000000000000"}),
        ]
    ).map(lambda kv: {"key": kv[0], "value": kv[1]}),
)


@settings(max_examples=examples(400))
@given(
    st.sampled_from(range(len(_SPANS))),
    st.lists(_CHANGES, max_size=2),
    st.lists(_TYPED_TWEAKS, max_size=3),
    st.sampled_from(["acme/otel", "acme", "a/b/c", "x" * 300 + "/p"]),
    st.sampled_from([{}, {"code": 2, "message": "boom"}, {"code": 1}]),
)
def test_a_typed_calls_facts_are_complete_facts(
    n: int,
    changes: list[tuple[str, Any]],
    extra: list[dict[str, Any]],
    project: str,
    status: dict[str, Any],
) -> None:
    """The short check of a typed span's call (`otlp_facts`) answers as `complete_facts`,
    the first time (the full check) and the next (the short one, its project and op name
    known)."""
    from tracecli.diagnostics import Location
    from tracecli.otel.to_weave import MappingError, span_to_call
    from tracecli.otel.typed import typed_spans
    from tracecli.schema.fastcheck import COMPLETE_KEYS, complete_facts
    from tracecli.upload.otlp_facts import typed_call_facts

    raw = {**_SPANS[n], **dict(changes), "status": status}
    raw["attributes"] = [*(raw.get("attributes") or []), *extra]
    line = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [raw]}]}]})
    typed = typed_spans(Location("f", 1), line)
    if typed is None:
        return
    try:
        call = span_to_call(typed[0].span, project)
    except MappingError:
        return
    call["summary"] = {"usage": call["summary"]["usage"]}
    want = complete_facts(call, COMPLETE_KEYS, True, 3)
    assert typed_call_facts(call, 3) == want
    assert typed_call_facts(call, 3) == want


def test_the_usual_typed_calls_take_the_short_check() -> None:
    """The fixtures' spans (the real SDK's) are checked the short way once their project
    and op names are known: else the short check would only cost."""
    from tracecli.diagnostics import Location
    from tracecli.otel.to_weave import span_to_call
    from tracecli.otel.typed import typed_spans
    from tracecli.upload import otlp_facts

    data = gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes())
    calls = []
    for raw in data.splitlines():
        for s in typed_spans(Location("f", 1), raw) or []:
            call = span_to_call(s.span, "acme/otel")
            call["summary"] = {"usage": call["summary"]["usage"]}
            calls.append(call)
    for call in calls:
        assert otlp_facts.typed_call_facts(call, 1) is not None
    full = otlp_facts.complete_facts
    try:
        otlp_facts.complete_facts = None  # type: ignore[assignment]
        assert all(otlp_facts.typed_call_facts(call, 1) is not None for call in calls)
    finally:
        otlp_facts.complete_facts = full


# -- weave's picks, on plans made for the attribute keys as read ---------------------------
_WEAVE_LIKE_KEYS = st.sampled_from(
    ["gen_ai", "gen_ai.request", "gen_ai.request.model", "gen_ai.request.0",
     "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.prompt.0.content",
     "gen_ai.prompt.1.role", "gen_ai.prompt", "gen_ai.input.messages", "input", "input.value",
     "inputs.0", "output", "llm.token_count.prompt", "llm.model_name", "wandb.attributes.x",
     "wandb.display_name", "wandb.wb_run_step", "gen_ai.conversation.id", "app.x", "a.0",
     "gen_ai.usage", "gen_ai.conversation", "wandb", "llm"]
)  # fmt: skip


# values a pick walks into (a key above weave's path: `gen_ai` holding `request.model`)
_WALKED_INTO = st.sampled_from(
    [
        {"stringValue": '{"request": {"model": "m", "seed": 1}, "usage": {"input_tokens": 3}}'},
        {"stringValue": '{"value": "hi", "messages": [1]}'},
        {"stringValue": '{"input_tokens": 5, "output_tokens": 2}'},
        {"kvlistValue": {"values": [{"key": "request", "value": {"kvlistValue": {"values": [
            {"key": "model", "value": {"stringValue": "m2"}}]}}}]}},
        {"kvlistValue": {"values": [{"key": "id", "value": {"stringValue": "t1"}}]}},
    ]
)  # fmt: skip


# attributes added to a fixture span: weave-like keys, impure values and values walked into
_WEAVE_LIKE_EXTRAS = st.lists(
    st.tuples(_WEAVE_LIKE_KEYS, st.one_of(_IMPURE_VALUES, _WALKED_INTO)).map(
        lambda kv: {"key": kv[0], "value": kv[1]}
    ),
    max_size=5,
)


def _call_or_error(span: Any) -> Any:
    from tracecli.otel.to_weave import MappingError, span_to_call

    try:
        return span_to_call(span, "acme/otel")
    except MappingError as exc:
        return ("refused", str(exc))


@settings(max_examples=examples(500))
@given(
    st.sampled_from(range(len(_SPANS))),
    _WEAVE_LIKE_EXTRAS,
)
def test_picks_on_the_keys_as_read_are_the_picks_on_heads(
    n: int, extra: list[dict[str, Any]]
) -> None:
    """A span's call is the same whether weave's picks look only where its keys are, or
    wherever a key's first part is (the plan for unknown keys)."""
    import copy

    raw = orjson.loads(orjson.dumps(_SPANS[n]))
    raw["attributes"] = [*raw.get("attributes", []), *extra]
    try:
        span = decode_span(raw, None)
    except FieldError:
        return
    assert span.keys == tuple(kv["key"] for kv in raw["attributes"])
    unknown = copy.deepcopy(span)
    unknown.keys = None
    assert _same(_call_or_error(span), _call_or_error(unknown))


def test_weaves_paths_have_no_digit_parts() -> None:
    """What the key plans and `plain_call` rely on: weave's conversion of `"0"`, `"1"`...
    objects to lists brings no path of weave's into being (none indexes a list)."""
    from tracecli.otel.to_weave import _PICK_PATHS

    assert _PICK_PATHS
    assert not any(part.isdigit() or not part for p in _PICK_PATHS for part in p.split("."))


def _span_with(n: int, extra: list[dict[str, Any]]) -> Any:
    """Fixture span `n` with `extra` attributes, decoded; None where it cannot be."""
    raw = orjson.loads(orjson.dumps(_SPANS[n]))
    raw["attributes"] = [*raw.get("attributes", []), *extra]
    try:
        return decode_span(raw, None)
    except FieldError:
        return None


@settings(max_examples=examples(500))
@given(
    st.sampled_from(range(len(_SPANS))),
    _WEAVE_LIKE_EXTRAS,
    st.booleans(),
)
def test_picks_written_out_are_the_walk(n: int, extra: list[dict[str, Any]], known: bool) -> None:
    """A plan met before runs as the function written for it (`pick_plan`): the same
    picks, and the same changes to the attributes (weave's list conversion, in place), as
    the walk of the plan, on plans for the keys as read and for the heads alone."""
    import copy

    from tracecli.otel import weave_keys
    from tracecli.otel.to_weave import _GROUPS

    span = _span_with(n, extra)
    if span is None:
        return
    flat = span.keys if known else None
    attributes, walked = span.attributes, copy.deepcopy(span.attributes)
    for _ in range(2):  # (written out at its second span)
        weave_keys.picks(copy.deepcopy(attributes), _GROUPS, flat)
    at = (id(_GROUPS), tuple(attributes) if flat is None else flat, flat is None)
    _, plans, written = weave_keys._GROUP_PLANS[at]
    assert written is not None
    got = written(attributes)
    want = weave_keys.walk_plans(walked, plans)
    assert _same(got, want), (got, want)
    assert _same(attributes, walked), (attributes, walked)


_REF_BITS = st.sampled_from(
    [b'"weave:///e/p/object/o:d"', b"weave", b'"weav', b"\\u0077eave", b"\\u00", b"\\u0065",
     b"\\\\u0077", b"\\u0061", b"\\u0076", b'"', b"\\", b"x", b"\xc3\xa9", b"u0077"]
)  # fmt: skip


@settings(max_examples=examples(500))
@given(st.lists(st.one_of(_REF_BITS, st.binary(max_size=6)), max_size=8).map(b"".join))
def test_a_lines_quick_no_ref_is_find_ref(raw: bytes) -> None:
    """`otlp_lines.no_ref`, two `find`s first, answers as the exact search does."""
    from tracecli.upload.lines import find_ref
    from tracecli.upload.otlp_lines import no_ref

    assert no_ref(raw) == (find_ref(raw) is None)


_NESTED_KEYS = st.lists(st.sampled_from(["app", "a", "b", "0", "1", "gen_ai", "request"]),
                        min_size=1, max_size=4).map(".".join)  # fmt: skip


@settings(max_examples=examples(500))
@given(
    st.sampled_from(range(len(_SPANS))),
    st.lists(
        st.tuples(st.one_of(_WEAVE_LIKE_KEYS, _NESTED_KEYS), _IMPURE_VALUES).map(
            lambda kv: {"key": kv[0], "value": kv[1]}
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_json_attributes_are_the_attributes_made_json_safe(
    n: int, extra: list[dict[str, Any]], picked: bool
) -> None:
    """A span's attributes as weave keeps them in `otel_span` (`Span.json_attributes`, which
    copies only the way to its impure values) are `to_json_serializable` of them, after
    weave's picks changed them in place or not; and the span's own are left as they were."""
    import copy

    from tracecli.otel.nesting import to_json_serializable

    span = _span_with(n, extra)
    if span is None:
        return
    if picked:
        _call_or_error(span)  # (weave's list conversion, in place)
    before = copy.deepcopy(span.attributes)
    got = span.json_attributes()
    assert _same(got, to_json_serializable(before)), (got, before)
    assert _same(span.attributes, before)
    assert orjson.dumps(got) == orjson.dumps(to_json_serializable(before))


def test_usual_span_puts_each_field_in_its_place() -> None:
    """`usual_span` builds the Span positionally (quicker): each value lands on its field."""
    from tracecli.otel.attrlist import Read
    from tracecli.otel.spans import usual_span

    resource, values, events, links = object(), {"a": 1}, [object()], [object()]
    span = usual_span(
        resource,  # type: ignore[arg-type]
        "name",
        ("t" * 32, "s" * 16, "p" * 16),
        (11, 22),
        (3, "state", 7),
        Read(values, ("k",), ("a",)),
        (2, "message"),
        events,  # type: ignore[arg-type]
        links,  # type: ignore[arg-type]
    )
    assert vars(span) == {
        "resource": resource, "name": "name", "trace_id": "t" * 32, "span_id": "s" * 16,
        "start_time_unix_nano": 11, "end_time_unix_nano": 22, "attributes": values,
        "kind": 3, "parent_id": "p" * 16, "trace_state": "state", "flags": 7,
        "events": events, "links": links, "status_code": 2, "status_message": "message",
        "plain": False, "impure": ("k",), "keys": ("a",), "deep": False,
    }  # fmt: skip
