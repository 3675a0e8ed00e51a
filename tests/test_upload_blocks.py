"""The upload's per-block entries: named, and as cheap to ship back from a worker."""

from __future__ import annotations

import pickle

from tracecli.upload.blocks import Bad, Ok, Pair, prepare_lines

START = (
    b'{"type":"start","id":"%s","trace_id":"' + b"1" * 32 + b'","project_id":"e/p",'
    b'"op_name":"f","started_at":"2026-01-01T00:00:00Z","inputs":{},"attributes":{}}'
)
A, B = b"a" * 16, b"b" * 16  # span ids
END = b'{"type":"end","id":"%s","project_id":"e/p","ended_at":"2026-01-01T00:00:01Z","summary":{}}'


def test_entries_keep_their_names_through_pickling() -> None:
    data = b"\n".join([START % A, START % B, END % A, b"{oops"]) + b"\n"
    got = prepare_lines(data, "p.jsonl", True, None)
    assert [type(e) for e in got.entries] == [Pair, Ok, Bad]
    pair, lone, bad = got.entries
    assert isinstance(pair, Pair) and (pair.line, pair.end_line, pair.call_id) == (1, 3, A.decode())
    assert isinstance(lone, Ok) and (lone.kind, lone.call_id, lone.line) == ("start", B.decode(), 2)
    assert isinstance(bad, Bad) and bad.line == 4 and bad.diags[0][1] == "json"
    back = pickle.loads(pickle.dumps(got))
    assert (back.lines, back.records) == (got.lines, got.records) == (4, 4)
    assert back.entries == got.entries
    assert [type(e) for e in back.entries] == [Pair, Ok, Bad]


def test_a_reference_with_an_escaped_letter_is_refused_like_a_plain_one() -> None:
    """`"\\u0077eave:///e/p"` is `"weave:///e/p"` to the server: a block holding it is not
    sent on the fast path, where a bad reference would go through unchecked."""
    bad = b'{"doc":"weave:///e/p"}'
    escaped = b'{"doc":"\\u0077eave:///e/p"}'
    for inputs in (bad, escaped):
        data = (START % A).replace(b'"inputs":{}', b'"inputs":' + inputs) + b"\n"
        (entry,) = prepare_lines(data, "p.jsonl", True, None).entries
        assert isinstance(entry, Bad), inputs
        assert [(d[0], d[1]) for d in entry.diags] == [("inputs.doc", "ref")], inputs


def test_a_batch_item_whose_mode_is_a_list_gets_validates_error_not_an_internal_one() -> None:
    """The fast path gives up on an unhashable "mode"; the full check says what is wrong,
    as validate says it (upload used to report its own bug here)."""
    data = b'{"mode": ["start"], "req": {"x": {}}}\n'
    (entry,) = prepare_lines(data, "p.jsonl", True, None).entries
    assert isinstance(entry, Bad)
    assert [(d[0], d[1]) for d in entry.diags] == [("mode", "shape")]
