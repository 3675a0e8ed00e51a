"""upload's blocks read with the typed decoder first give what they gave without it.

`blocks.prepare_lines` checks each line the typed decoder (`schema.typed`) vouches for
with msgspec and decodes it with orjson only to encode it; every other line goes the way
all lines went before (`blocks.prepare_each`: orjson, the fast path, the full check). The
contract: the same lines and records, the same entries (kinds, facts, warnings and
errors, values as read) and the same bodies, byte for byte, whatever the bytes; and the
typed path is taken for the records the trace writers write, in every style, or it is
not worth its keep.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tests.support.validate_kit import end, start
from tracecli.upload import blocks
from tracecli.upload.blocks import Ok, Pair, prepare_each, prepare_lines

STYLES = ("compact", "dumps", "offsets")
CID, TID = "6cad4a26-8d11-4ece-9738-f7d93d9c1724", "0123456789abcdef0123456789abcdef"
START = json.dumps(start(CID, TID)).encode()
END = json.dumps(end(CID)).encode()
# what msgspec and orjson read differently, or orjson writes back otherwise (much as in
# tests/test_typed.py, which holds validate's typed path to the same), by kind
ODD_VALUES = [
    *(b"NaN", b"-Infinity", b"1e400", b"-1E+400", b"1.5e0309", b"1e-400", b"1e308"),
    *(b"1.7976931348623159e308", b"[1, 1E400 ]", b'{"1e400": 2e441}', b'"2e441 1e400"'),
    *(b"9" * 400 + b".5", b"-" + b"9" * 400, b"18446744073709551616"),
    *(b"-9223372036854775809", b"123456789012345678901234567890"),
    *(b'"\\ud800"', b'"\\udc00\\ud800"', b'"\xff"', b'"\xed\xa0\x80"', b'"tab\there"'),
    *(b'"x\x01"', b'"\\x"'),
    *(b'"weave:///acme/agents/op/x:1"', b'"weave:///nope"', b'"\\u0077eave:///nope"'),
    *(b'{"weave": 1}',),
    *(b"[" * 300 + b"]" * 300, b"{" + b'"a":{' * 260 + b"}" * 261),
    *(b"[1, 2,]", b"tru", b"01"),
]
SHAPES = ("flat", "batch", "requests", "complete")


def _gen_traces() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "gen_traces.py"
    spec = importlib.util.spec_from_file_location("gen_traces_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_traces()


def _lines(style: str, shape: str = "flat", seed: int = 7, traces: int = 3) -> list[bytes]:
    gen = GEN.Gen(seed, "acme/agents", 0.0, style)
    out: list[bytes] = []
    for _ in range(traces):
        out.extend(GEN.lines(shape, gen.trace(), style))
    return out


@contextmanager
def _orjson_lines() -> Iterator[list[int]]:
    """The lines of `prepare_lines` that went the orjson way, by number."""
    seen: list[int] = []
    real = blocks._prepare_one

    def spy(raw: bytes, n: int, *args: Any) -> None:
        seen.append(n)
        real(raw, n, *args)

    blocks._prepare_one = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        blocks._prepare_one = real  # type: ignore[assignment]


def _same(data: bytes, at_start: bool = True, project: str | None = None) -> tuple[Any, list[int]]:
    """prepare_lines and prepare_each on `data` (under `--project project`): equal in
    everything (bodies compared as bytes; values through repr, so that a NaN read from
    the line equals itself; the project_id as read kept the same way)."""
    with _orjson_lines() as slow:
        typed = prepare_lines(data, "t.jsonl", at_start, project)
    old = prepare_each(data, "t.jsonl", at_start, project)
    assert (typed.lines, typed.records) == (old.lines, old.records), data[:300]
    assert len(typed.entries) == len(old.entries), data[:300]
    for a, b in zip(typed.entries, old.entries, strict=True):
        assert type(a) is type(b), (a, b)
        assert repr(a) == repr(b), data[:300]
        if type(a) in (Ok, Pair):
            bodies = [x for x in a if type(x) is bytes]
            assert bodies == [x for x in b if type(x) is bytes]
    return typed, slow


def _block(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# ------------------------------------------------------------------ taken where it should be
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("style", STYLES)
def test_generated_files_take_the_typed_path(style: str, shape: str) -> None:
    lines = _lines(style, shape)
    got, slow = _same(_block(lines))
    # only the first line of a shape other than flat is read by orjson (it names the shape)
    assert slow == ([] if shape == "flat" else [1]), slow
    if shape != "complete":
        assert sum(type(e) is Pair for e in got.entries) * 2 == len(lines)


# another project than the file's, the file's own (nothing replaced), one never valid
PROJECTS = (None, "other/project", "acme/agents", "no-slash")


@pytest.mark.parametrize("project", PROJECTS[1:])
@pytest.mark.parametrize("shape", SHAPES)
def test_with_a_project_lines_take_the_typed_path(shape: str, project: str) -> None:
    """Under --project the typed path reads each line as written (its checks see the
    project_id as read, which `--project` replaces in the body it sends and keeps for
    the rejected file): the entries of the old way, which replaced it before its
    checks. A project that is never valid refuses every record: the old way alone."""
    data = _block(_lines("compact", shape))
    got, slow = _same(data, project=project)
    if project == "no-slash":
        assert len(slow) == got.records
        assert not any(type(e) in (Ok, Pair) for e in got.entries)
        return
    assert slow == ([] if shape == "flat" else [1]), slow
    sent = [
        (e.start_orig, e.start_body) if type(e) is Pair else (e.orig, e.body) for e in got.entries
    ]
    assert {orig for orig, _ in sent} == ({None} if project == "acme/agents" else {"acme/agents"})
    assert sent and all(b'"project_id":"%s"' % project.encode() in b for _, b in sent)


@pytest.mark.parametrize("project", ["acme/\udcff", "acme/\x00", 'acme/"q"', "acme/é"])
def test_with_a_project_orjson_cannot_write_the_old_way_answers(
    project: str,
) -> None:
    """A project from the command line that orjson cannot write (a lone surrogate: argv's
    undecodable bytes) makes the typed path give up on the line, which the old way then
    answers (its own encoding); control characters, quotes, non-ASCII: the same bodies."""
    got, _ = _same(_block(_lines("compact", traces=1)), project=project)
    assert got.entries


def test_with_a_project_a_record_without_a_valid_one_of_its_own_is_sent_with_it() -> None:
    """A record whose own project_id is missing or not entity/project goes the old way,
    which checks the project that replaces it (accepted, kept as read for a refusal)."""
    lines = _lines("compact", traces=1)
    for i, (old, new) in enumerate(
        [(b'"project_id":"acme/agents",', b""), (b'"acme/agents"', b'"bad"')]
    ):
        lines[i] = lines[i].replace(old, new, 1)
    got, slow = _same(_block(lines), project="other/project")
    assert slow == [1, 2]
    assert all(type(e) in (Ok, Pair) for e in got.entries)


# ------------------------------------------------------------------ generated and edited lines
_EDITS = [
    b"1.50",
    b"1e5",
    b"1E+2",
    b"-0",
    b"-0.0",
    b"0.1",
    b"100000.0",
    b"1.7976931348623157e308",
    b"9223372036854775807",
    b"18446744073709551615",
    b"-9223372036854775808",
    b"-9999999999999999999",
    b'"\\u00e9\\/\\b\\f\\u001F\\u0041"',
    b'"\\ud83d\\ude00 caf\xc3\xa9 \xe2\x80\xa8 \x7f"',
    b'{"weave": {"status": "success", "latency_ms": 3}}',
    b'{"a": 1, "a": 2}',
    b'[{"k": 1}, {"k": 1, "k": 2}]',
    *ODD_VALUES,
]
_KEYS = [
    b"inputs",
    b"attributes",
    b"output",
    b"summary",
    b"type",
    b"id",
    b"project_id",
    b"trace_id",
    b"parent_id",
    b"display_name",
    b"started_at",
    b"ended_at",
    b"exception",
    b"wb_run_step",
    b"otel_dump",
    b"typ\\u0065",
    b"colour",
]


def _with(line: bytes, key: bytes, value: bytes) -> bytes:
    """`line` (a JSON object) with `"key": value` added last, as bytes (duplicates too)."""
    return b'%s, "%s": %s}' % (line[:-1], key, value)


def _edit(line: bytes, key: bytes, value: bytes, where: int) -> bytes:
    """`line` with `"key": value` added at its end, or inside its first free-form object
    (`where` picks which of inputs, attributes, output, summary), or a field's value
    replaced."""
    if where == 0:
        return _with(line, key, value)
    name = (b'"inputs"', b'"attributes"', b'"output"', b'"summary"')[where % 4]
    for sep in (b":{", b": {"):
        i = line.find(name + sep)
        if i >= 0:
            i += len(name) + len(sep)
            return line[:i] + b'"' + key + b'":' + value + b"," + line[i:]
    return _with(line, key, value)


def _restyle(line: bytes, how: int) -> bytes:
    """The same record written another way: spaces, sorted keys, escapes, a CR."""
    if how == 1:
        return line.replace(b'":', b'" :').replace(b",", b" , ", 1)
    if how == 2:
        try:
            return json.dumps(json.loads(line), sort_keys=True).encode()
        except ValueError:
            return line
    if how == 3:
        return line.replace(b"a", b"\\u0061", 2)
    if how == 4:
        return line + b"\r"
    if how == 5:
        return b"  " + line + b" "
    return line


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    style=st.sampled_from(STYLES),
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 1000),
    edits=st.lists(
        st.tuples(
            st.integers(0, 40),
            st.sampled_from(_KEYS),
            st.sampled_from(_EDITS),
            st.integers(0, 4),
            st.integers(0, 8),
        ),
        max_size=4,
    ),
    at_start=st.booleans(),
    project=st.sampled_from(PROJECTS),
)
def test_edited_lines_read_the_same_both_ways(
    style: str,
    shape: str,
    seed: int,
    edits: list[tuple[int, bytes, bytes, int, int]],
    at_start: bool,
    project: str | None,
) -> None:
    lines = _lines(style, shape, seed, traces=2)
    for at, key, value, where, how in edits:
        i = at % len(lines)
        lines[i] = _restyle(_edit(lines[i], key, value, where), how)
    _same(_block(lines), at_start, project)


@settings(max_examples=examples(200), deadline=None)
@given(
    values=st.lists(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**70), 2**70)
            | st.floats(allow_nan=True)
            | st.text(max_size=12),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.sampled_from(["a", "b", "weave", "k"]), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        min_size=1,
        max_size=3,
    ),
    style=st.sampled_from(STYLES),
    project=st.sampled_from(PROJECTS),
)
def test_any_free_form_values_read_the_same_both_ways(
    values: list[Any], style: str, project: str | None
) -> None:
    """Values of every kind in inputs and output, written by Python's json (its NaN, its
    escapes, its wide integers, its float spellings)."""
    lines = _lines(style, "flat", 3, traces=1)
    for i, v in enumerate(values):
        text = json.dumps(v, ensure_ascii=i % 2 == 0).encode("utf-8", "surrogatepass")
        lines[i % len(lines)] = _edit(lines[i % len(lines)], b"x", text, 1 + 2 * (i % 2))
    _same(_block(lines), project=project)


@pytest.mark.parametrize("line", [b"", b"   ", b"[]", b"{}", b"nope", b"\xef\xbb\xbf" + START])
def test_odd_lines_between_records(line: bytes) -> None:
    _same(_block([START, line, END]))
    _same(_block([line, START, END]))


@settings(max_examples=examples(100), deadline=None)
@given(
    style=st.sampled_from(STYLES),
    seed=st.integers(0, 1000),
    order=st.randoms(),
    project=st.sampled_from(PROJECTS[:3]),
)
def test_ends_with_their_keys_in_any_order_read_the_same_both_ways(
    style: str, seed: int, order: Any, project: str | None
) -> None:
    """An end's project_id and id anywhere among its fields (sorted keys put id, then
    project_id, amid them): the typed path's split (`blocks.own_end_split`) gives the
    bodies `split_end` gives."""
    lines = _lines(style, "flat", seed, traces=2)
    for i, line in enumerate(lines):
        value = json.loads(line)
        if value.get("type") == "end":
            keys = list(value)
            order.shuffle(keys)
            lines[i] = json.dumps({k: value[k] for k in keys}, separators=(",", ":")).encode()
    _, slow = _same(_block(lines), project=project)
    assert not slow  # every line on the typed path


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("levels", [250, 253, 254, 255, 256])
@pytest.mark.parametrize("where", [0, 1, 5])
def test_nesting_near_the_limit_reads_the_same_both_ways(
    bom: bytes, levels: int, where: int
) -> None:
    """A line's openers are counted in its range of the block's one translation (the
    first line's range past a byte-order mark): lines near the depth the server reads
    back give the answer the old way gives, wherever they are in the block."""
    lines = _lines("compact", "flat", 5, traces=1)
    deep = b"[" * levels + b"]" * levels
    lines[where] = _edit(lines[where], b"x", deep, 1 + where % 2)
    lines[0] = bom + lines[0]
    _same(_block(lines))
