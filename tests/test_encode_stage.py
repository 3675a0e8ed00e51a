"""The encode stage of upload's worker: its shortcuts give what the plain versions gave.

`split_end` cuts the head of an end from its one encoding when the ids need no escape,
and `pair_up` counts keys in one C-speed pass; both are checked here against the
straightforward versions they replaced, on random input (odd key orders, wide ints,
non-ASCII text, escapes, lone surrogates, refused and duplicate ids).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sweeps import examples
from tracecli.diagnostics import Severity
from tracecli.schema.fields import END_FIELDS
from tracecli.upload.blocks import Bad, Entry, FreeplayRecord, Ok, Pair, pair_up
from tracecli.wire.encode import END_KEYS, dumps, split_end


def old_split_end(data: dict[str, Any]) -> tuple[bytes, bytes]:
    """`split_end` as it was: the head encoded as a dict of its own."""
    keys = list(data)
    if keys[:2] == ["project_id", "id"] and END_KEYS.issuperset(keys[2:]):
        head = dumps({"project_id": data["project_id"], "id": data["id"]})
        whole = dumps(data)
        if whole.startswith(head[:-1]):
            return head, b"{" + whole[len(head) :] if len(whole) > len(head) else b"{}"
    rest = {k: v for k, v in data.items() if k not in END_KEYS}
    tail = {k: v for k, v in data.items() if k in END_KEYS}
    return dumps(rest), dumps(tail)


TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet='ab"\\\x00\x1f\x7f/é€\u2028\U0001f600', max_size=8),
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3),
    st.sampled_from(["e/p", "acme/agents", "a" * 16, "0123456789abcdef"]),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
ID = st.one_of(TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.none())
KEY = st.one_of(st.sampled_from(END_FIELDS), st.sampled_from(["project_id", "id", "x"]), TEXT)


@st.composite
def end_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly the usual order (project_id, id, then end fields), sometimes any order."""
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["project_id"] = draw(ID)
        data["id"] = draw(ID)
        for k in draw(st.lists(st.sampled_from(END_FIELDS), unique=True)):
            data[k] = draw(VALUE)
    for k in draw(st.lists(KEY, max_size=4)):
        data[k] = draw(VALUE)
    return data


@settings(max_examples=examples(1500), deadline=None)
@given(end_bodies())
def test_split_end_equals_the_plain_split(data: dict[str, Any]) -> None:
    assert split_end(data) == old_split_end(data)


def test_split_end_cuts_the_usual_end_and_falls_back_on_escapes() -> None:
    end = {"project_id": "e/p", "id": "a", "ended_at": "t", "summary": {}}
    assert split_end(end) == (b'{"project_id":"e/p","id":"a"}', b'{"ended_at":"t","summary":{}}')
    assert split_end({"project_id": "e/p", "id": "a"}) == (b'{"project_id":"e/p","id":"a"}', b"{}")
    quoted = {"project_id": 'e/"p', "id": "a\\", "ended_at": "t"}
    assert split_end(quoted) == (b'{"project_id":"e/\\"p","id":"a\\\\"}', b'{"ended_at":"t"}')
    lone = {"project_id": "e/p", "id": "\ud800", "output": 2**70}
    assert split_end(lone) == (
        b'{"project_id":"e/p","id":"\\ud800"}',
        b'{"output":' + str(2**70).encode() + b"}",
    )


def old_pair_up(entries: list[Entry]) -> list[Entry]:
    """`pair_up` as it was: one table of keys, built in a first pass."""
    seen: dict[Any, int] = {}
    for e in entries:
        if type(e) is Ok:
            key: Any = (e.project, e.call_id)
        elif type(e) is Bad:
            key = e.refused_id
            seen[("", key)] = 3
        else:
            continue
        seen[key] = seen.get(key, 0) + 1
    starts: dict[Any, tuple[int, Ok]] = {}
    out: list[Entry] = []
    for e in entries:
        if type(e) is Ok and not e.warnings:
            key = (e.project, e.call_id)
            if e.kind == "start" and seen[key] == 2 and ("", e.call_id) not in seen:
                starts[key] = (len(out), e)
            elif e.kind == "end":
                found = starts.pop(key, None)
                if found is not None:
                    i, st_ = found
                    out[i] = Pair(
                        st_.line, st_.call_id, st_.project, st_.trace_id, st_.parent_id,
                        st_.started, e.ended, e.line, st_.shape, st_.body, st_.flag, st_.orig,
                        e.shape, e.body, e.tail, e.flag, e.orig,
                    )  # fmt: skip
                    continue
        out.append(e)
    return out


@st.composite
def entry_lists(draw: st.DrawFn) -> list[Entry]:
    ids = st.sampled_from(["a", "b", "c", "d"])
    projects = st.sampled_from(["e/p", "e/q", ""])
    out: list[Entry] = []
    for n in range(draw(st.integers(0, 14))):
        what = draw(st.sampled_from(["start", "end", "end", "start", "complete", "bad", "fp"]))
        if what == "bad":
            rid = draw(st.one_of(st.none(), ids))
            out.append(Bad(n, None, (("x", "y", Severity.ERROR, "m"),), rid))
        elif what == "fp":
            out.append(FreeplayRecord(n, {}))
        else:
            warn = (("f", "c", "m"),) if draw(st.integers(0, 5)) == 0 else ()
            out.append(
                Ok(
                    n,
                    what,
                    "flat",
                    draw(ids),
                    draw(projects),
                    "t",
                    None,
                    1.0,
                    2.0,
                    b"{%d}" % n,
                    b"{}",
                    draw(st.booleans()),
                    None,
                    warn,
                )
            )
    return out


@settings(max_examples=examples(1500), deadline=None)
@given(entry_lists())
def test_pair_up_equals_the_two_table_version(entries: list[Entry]) -> None:
    got = pair_up(list(entries))
    want = old_pair_up(list(entries))
    assert got == want
    assert [type(e) for e in got] == [type(e) for e in want]
