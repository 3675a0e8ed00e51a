"""Inputs in shapes a bug hunt found read wrong, held here.

- an OTLP export written as a JSON array of requests (one line, or pretty-printed) is
  OpenTelemetry: each element is read as one request, placed at the line where it starts,
  a refused one kept whole in the rejected file (it was read as Weave records, each one
  "fits no known shape");
- a named pipe (`<(gzip -dc f.gz)`, `mkfifo`) is sniffed as stdin is: its head read once,
  then the same stream read on with the head in front (an OTLP file, a JSON array or
  pretty JSON given so was read line by line, an error a line).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support import otel_kit
from tests.support.otel_spans import bare_span as _span
from tests.support.servers import make_call
from tests.support.uploadkit import run_cli
from tracecli.inputs.sniff import OTLP, Sniffed, head_of, sniff
from tracecli.inputs.streams import open_stream
from tracecli.upload.api import UploadOptions, upload
from tracecli.upload.validate import validate_paths


def _request(*spans: dict[str, Any]) -> dict[str, Any]:
    scope = {"scope": {"name": "hunt"}, "spans": list(spans)}
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [scope]}]}


GOOD = [_request(_span("aaa19b7ec3c1b174")), _request(_span("bbb19b7ec3c1b174"))]
# a span whose start is not a time: refused, its request kept in the rejected file
BAD = _request({**_span("ccc19b7ec3c1b174"), "startTimeUnixNano": "soon"})


def _to_store(tmp_path: Path, project: str | None = "acme/otlp") -> UploadOptions:
    return UploadOptions(
        db=tmp_path / "t.db",
        project=project,
        rejected=tmp_path / "rejected.jsonl",
        journal_path=tmp_path / "journal.db",
    )


def _stored_ids(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as c:
        return sorted(r[0] for r in c.execute("select id from calls"))


# -- an OTLP export as a JSON array -------------------------------------------------------
def test_a_json_array_of_otlp_requests_is_read_as_requests(tmp_path: Path) -> None:
    for name, text in (
        ("pretty.json", json.dumps(GOOD, indent=2) + "\n"),
        ("one-line.jsonl", json.dumps(GOOD) + "\n"),
    ):
        path = tmp_path / name
        path.write_text(text)
        report = validate_paths([str(path)], jobs=0)
        assert report.diagnostics == [], (name, report.diagnostics)
        assert (report.records, report.calls) == (2, 2), name


def test_a_json_array_of_otlp_requests_uploads_as_its_lines_would(tmp_path: Path) -> None:
    lines = tmp_path / "lines"
    lines.mkdir()
    (lines / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    up = upload([str(lines / "spans.jsonl")], _to_store(lines))
    assert (up.uploaded, up.rejected) == (2, 0), up.diagnostics
    arr = tmp_path / "arr"
    arr.mkdir()
    path = arr / "spans.json"
    path.write_text(json.dumps([GOOD[0], BAD, GOOD[1]], indent=2) + "\n")
    start_of_bad = 1 + len(json.dumps(GOOD[0], indent=2).splitlines()) + 1
    report = validate_paths([str(path)], jobs=0)
    assert [(d.line, d.severity.value) for d in report.diagnostics] == [(start_of_bad, "error")]
    up = upload([str(path)], _to_store(arr))
    assert (up.uploaded, up.rejected) == (2, 1), up.diagnostics
    assert [d.line for d in up.diagnostics] == [start_of_bad]
    kept = [json.loads(x) for x in (arr / "rejected.jsonl").read_text().splitlines()]
    assert [k.pop("_tracecli")["line"] for k in kept] == [start_of_bad]
    assert kept == [BAD]  # the element whole, to be fixed and sent again
    assert _stored_ids(arr / "t.db") == _stored_ids(lines / "t.db")


# -- a named pipe ---------------------------------------------------------------------------
@contextmanager
def _fifo(tmp_path: Path, data: bytes, name: str = "pipe") -> Iterator[str]:
    """A named pipe that a thread writes `data` into (the reader opens it when it reads)."""
    path = tmp_path / name
    os.mkfifo(path)

    def write() -> None:
        with suppress(BrokenPipeError), open(path, "wb") as f:  # (see below)
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield str(path)
    finally:
        if writer.is_alive():  # nobody opened it: let the writer go
            # without blocking: the writer may be done but not yet ended (it waits for the
            # GIL after its close), and a blocking open would then wait for a writer forever
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with suppress(BlockingIOError):
                os.read(fd, len(data) + 1)
            os.close(fd)
        writer.join(10)


FIXTURES = Path(__file__).parent / "otel_fixtures"
WEAVE = [make_call("acme/pipe", op=f"pipe.{n}", at=n) for n in range(3)]
SHAPES = {
    "otlp": "".join(json.dumps(r) + "\n" for r in GOOD).encode(),
    "pretty-array": json.dumps(WEAVE, indent=2).encode() + b"\n",
    "jsonl": b"".join(json.dumps(c).encode() + b"\n" for c in WEAVE),
}


def test_a_named_pipe_is_sniffed_as_stdin_is_by_validate(tmp_path: Path) -> None:
    for shape, data in SHAPES.items():
        with _fifo(tmp_path, data, shape) as path:
            report = validate_paths([path], jobs=0)
        assert report.diagnostics == [], (shape, report.diagnostics)
        assert report.records == (2 if shape == "otlp" else 3), shape


def test_a_named_pipe_is_sniffed_as_stdin_is_by_upload(tmp_path: Path) -> None:
    for shape, data in SHAPES.items():
        folder = tmp_path / shape
        folder.mkdir()
        with _fifo(folder, data) as path:
            up = upload([path], _to_store(folder, "acme/otlp" if shape == "otlp" else None))
        assert up.diagnostics == [] and up.rejected == 0, (shape, up.diagnostics)
        assert up.uploaded == (2 if shape == "otlp" else 3), shape


def test_sniff_tells_an_array_of_otlp_requests_from_an_array_of_records() -> None:
    pretty = json.dumps(GOOD, indent=2).encode()
    compact = json.dumps(GOOD).encode() + b"\n"
    records = json.dumps(WEAVE, indent=2).encode()
    assert sniff(pretty) == Sniffed("json", OTLP)
    assert sniff(compact) == Sniffed("json", OTLP)
    assert sniff(pretty[:200]) == Sniffed("json", OTLP)  # a head cut in the first request
    assert sniff(records) == Sniffed("json", None)
    # a record that holds an OTLP request is a record
    held = [{**WEAVE[0], "inputs": GOOD[0]}]
    assert sniff(json.dumps(held, indent=2).encode()) == Sniffed("json", None)
    assert sniff(b'[ {\n  "resourceLogs": []}]\n') == Sniffed("json", "otlp-other")
    assert sniff(json.dumps(WEAVE).encode() + b"\n", json_suffix=True) == Sniffed("json", None)
    # a JSON-lines file whose line is an array stays one (wrong) record a line
    assert sniff(compact + compact) == Sniffed("jsonl", None)


def test_a_pipes_head_is_one_whole_line_when_it_is_json_lines(tmp_path: Path) -> None:
    """A writer still writing (`/dev/fd/N` of a pipe held open) is not waited for beyond
    the first line: its head is told from it, then the same stream reads on from it."""
    r, w = os.pipe()
    path = f"/dev/fd/{r}"
    first = json.dumps(WEAVE[0]).encode() + b"\n"
    got: list[bytes] = []
    try:
        os.write(w, first)
        sniffer = threading.Thread(target=lambda: got.append(head_of(path)), daemon=True)
        sniffer.start()
        sniffer.join(10)
        assert got == [first], "the head waited for the writer to finish"
        os.write(w, b"[1]\n")
        os.close(w)
        w = -1
        with open_stream(path) as stream:
            assert stream.read() == first + b"[1]\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


# -- the judge: what weave's own server stores ---------------------------------------------
refs = otel_kit.refs  # the fixture: two weave-ref servers


def test_an_otlp_array_through_a_pipe_stores_what_posting_its_requests_stores(
    refs: Any, tmp_path: Path
) -> None:
    """An agent's OTLP export as one pretty JSON array, given through a named pipe, to
    weave-ref B; its requests posted one by one to weave's own OTel route on A: the same
    calls stored, field by field."""
    a, b = refs
    project = "acme/array-pipe"
    lines = otel_kit.read_lines(FIXTURES / "agent-seed1.jsonl.gz")
    assert otel_kit.post_otel(a, lines, project) == 0
    data = json.dumps([json.loads(x) for x in lines], indent=2).encode() + b"\n"
    with _fifo(tmp_path, data) as path:
        up = run_cli("upload", path, "--server", b.url, "--api-key", "x", "-p", project,
                     "-f", "json", cwd=tmp_path)  # fmt: skip
    report = json.loads(up.stdout)
    assert report["rejected"] == 0 and report["uploaded"] > 0, up.stdout + up.stderr
    projects = {project} | otel_kit.resource_projects(lines)
    assert otel_kit.same_calls_stored(a.url, b.url, projects) == report["uploaded"]
