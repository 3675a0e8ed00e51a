"""`upload --follow` of a multi-document YAML file: a document the writer has written only
in part is valid YAML as it stands, so it must wait for what shows it is whole (the next
`---` or `...` line, or the file staying quiet for `QUIET_SECONDS`) or its missing keys
would never be sent. Against `tracecli serve` behind the fault proxy, which counts sends."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import received, start_follower, stop, wait_for
from tests.support.uploadkit import diff_calls, gen_calls, read_back, tracecli_serve
from tracecli.diagnostics import Diagnostic, Location
from tracecli.inputs.settle import QUIET_SECONDS
from tracecli.inputs.watch import FileStamp, Snapshot
from tracecli.inputs.yaml_records import LineDecoder, read_yaml
from tracecli.upload.follow import _quiet_at


def doc(record: dict[str, Any], skip: tuple[str, ...] = ()) -> bytes:
    """The record as one YAML document (block style, in its key order), less `skip`."""
    body = {k: v for k, v in record.items() if k not in skip}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True).encode()


def record(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", **start, **end}


def test_a_document_written_in_two_parts_goes_whole(tmp_path: Path) -> None:
    calls = gen_calls(3, seed=71)
    zeroth, first, second = (record(s, e) for s, e in calls)
    app = tmp_path / "app.yaml"
    app.write_bytes(doc(zeroth) + b"---\n")  # whole: its `---` follows
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app)
        try:
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)  # the follower is going
            with app.open("ab") as f:  # all but its output, still to come
                f.write(doc(first, skip=("output",)))
            time.sleep(1.2)  # passes run meanwhile (events, the 1 s look); under QUIET_SECONDS
            assert len(received(proxy)) == 1  # not whole yet: it did not go
            with app.open("ab") as f:
                f.write(
                    doc({"output": first["output"]}) + b"---\n" + doc(second)
                )  # the last one: no `---` after
            wait_for(lambda: len(received(proxy)) == 3, 30, proc)
        finally:
            assert stop(proc) == 0, (tmp_path / "follow0.err").read_text()
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []


def test_the_last_document_goes_once_the_file_is_quiet(tmp_path: Path) -> None:
    calls = gen_calls(1, seed=72)
    app = tmp_path / "app.yml"
    app.write_bytes(b"")
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app)
        try:
            time.sleep(0.5)
            with app.open("ab") as f:  # one document, no separator after it, no more writes
                f.write(doc(record(*calls[0])))
            written = time.monotonic()
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)
            took = time.monotonic() - written
        finally:
            assert stop(proc) == 0, (tmp_path / "follow0.err").read_text()
        assert took < QUIET_SECONDS + 10  # generous: a settle, then the pass it scheduled
        assert diff_calls(calls, read_back(serve.url)) == []


def _text(data: bytes, follow: bool, quiet: bool, tmp_path: Path) -> str:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    if quiet:
        old = time.time() - QUIET_SECONDS - 5
        os.utime(path, (old, old))
    with path.open("rb") as f:
        return LineDecoder(f, follow=follow).read()


def test_the_decoder_holds_back_the_last_document_while_the_file_is_fresh(
    tmp_path: Path,
) -> None:
    data = b"a: 1\n---\nb: 2\n...\nc: 3\n---\nd: 4\ne: [5"
    assert _text(data, follow=False, quiet=False, tmp_path=tmp_path) == data.decode()
    assert _text(data, follow=True, quiet=True, tmp_path=tmp_path) == data.decode()
    assert (
        _text(data, follow=True, quiet=False, tmp_path=tmp_path) == "a: 1\n---\nb: 2\n...\nc: 3\n"
    )
    ends = b"a: 1\n...\n"  # an explicit end: whole at once
    assert _text(ends, follow=True, quiet=False, tmp_path=tmp_path) == ends.decode()
    # `---` with a value on its line, `---` inside a block scalar (indented: not a marker)
    marked = b"--- {a: 1}\nb: |\n  ---\n  x\n--- !!map\nc: 2\n"
    assert (
        _text(marked, follow=True, quiet=False, tmp_path=tmp_path)
        == "--- {a: 1}\nb: |\n  ---\n  x\n"
    )
    assert _text(b"a: 1\n", follow=True, quiet=False, tmp_path=tmp_path) == ""


def test_a_top_level_list_waits_only_for_its_last_item(tmp_path: Path) -> None:
    data = b"# calls\n- a: 1\n  b:\n  - x\n- c: 2\n  d: 3\n"
    got = _text(data, follow=True, quiet=False, tmp_path=tmp_path)
    assert got == "# calls\n- a: 1\n  b:\n  - x\n"
    assert yaml.safe_load(io.StringIO(got)) == [{"a": 1, "b": ["x"]}]
    # a mapping document whose sequence sits at column 0 is not a list: it waits whole
    nested = b"a: 1\nb:\n- x\n- y\n"
    assert _text(nested, follow=True, quiet=False, tmp_path=tmp_path) == ""


def test_a_pass_is_scheduled_for_when_a_fresh_yaml_file_goes_quiet() -> None:
    now_ns = time.time_ns()
    fresh = FileStamp("a.yaml", 1, 1, 10, now_ns - 500_000_000)  # changed 0.5 s ago
    old = FileStamp("b.yml", 1, 2, 10, now_ns - 60 * 10**9)
    lines = FileStamp("c.jsonl", 1, 3, 10, now_ns)  # a JSON line is whole at its newline
    at = _quiet_at(Snapshot(("a.yaml", "b.yml", "c.jsonl"), frozenset({fresh, old, lines})), 100.0)
    assert at is not None and 100.0 + QUIET_SECONDS - 0.6 < at < 100.0 + QUIET_SECONDS
    assert _quiet_at(Snapshot(("b.yml", "c.jsonl"), frozenset({old, lines})), 100.0) is None


def test_a_list_cut_inside_a_quoted_item_is_no_error_until_quiet(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b'- {a: 1}\n- "abc\n- def"\n- b\n')  # PyYAML reads `abc - def`

    def read() -> list[Any]:
        with path.open("rb") as f:
            return list(read_yaml(LineDecoder(f, follow=True), str(path)))

    assert [v for _, v in read()] == [{"a": 1}, "abc - def"]
    path.write_bytes(b'- {a: 1}\n- "abc\n- def"\n')
    assert [v for _, v in read()] == [{"a": 1}]  # no diagnostic: the item waits
    old = time.time() - QUIET_SECONDS - 5
    path.write_bytes(b'- {a: 1}\n- "abc\n')  # the writer stopped there: said, at its line
    os.utime(path, (old, old))
    items = read()
    assert items[0] == (Location(str(path), 1), {"a": 1})
    assert isinstance(items[1], Diagnostic) and items[1].line == 3
