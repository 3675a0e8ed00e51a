"""`convert --to weave` with worker processes writes what it writes without them.

A multi-block OTLP file (real spans of tests/otel_fixtures, and the lines convert has
something to say about: span ids read twice, no project, spans weave refuses, calls ending
before they start, lines that are no JSON or no request, missing parents) converted by the
library with a pool of forked workers and without: the same bytes, the same report and the
same diagnostics, in the same order; and through the CLI from stdin (which counts as big,
so its run forks workers) against TRACECLI_JOBS=0.
"""

from __future__ import annotations

import copy
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.otel_spans import SPANS
from tracecli.diagnostics import Diagnostic
from tracecli.otel.convert import convert_otlp
from tracecli.upload import otlp_blocks, otlp_convert

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_772_445_245_000_000_000

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker processes are forked on Linux only"
)


def attr(key: str, text: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": text}}


def request(spans: list[dict[str, Any]], project: bool = True) -> bytes:
    names = [attr("wandb.entity", "acme"), attr("wandb.project", "otel")] if project else []
    rs = {"resource": {"attributes": names}, "scopeSpans": [{"spans": spans}]}
    return orjson.dumps({"resourceSpans": [rs]}) + b"\n"


def span(n: int, **over: Any) -> dict[str, Any]:
    """A fixture span with its own ids (the fixtures' own repeat across files)."""
    got = copy.deepcopy(SPANS[n % len(SPANS)])
    got["spanId"] = f"{n + 1:016x}"
    got["traceId"] = f"{n // 7 + 1:032x}"
    if n % 7:
        got["parentSpanId"] = f"{n // 7 * 7 + 1:016x}"
    else:
        got.pop("parentSpanId", None)
    got.update(over)
    return got


def otlp_lines(count: int) -> list[bytes]:
    """`count` lines of three spans each, every few one of the cases convert speaks of."""
    lines: list[bytes] = []
    for n in range(count):
        spans = [span(3 * n + k) for k in range(3)]
        case = n % 11
        if case == 1:
            spans[1]["spanId"] = spans[0]["spanId"]  # read before: left out
        elif case == 2:
            spans[2].update(startTimeUnixNano=str(T0 + 5_000), endTimeUnixNano=str(T0))
        elif case == 3:
            spans[0]["attributes"] = [
                attr("langfuse.startTime", "2026-03-02T10:00:01.5"),
                attr("langfuse.endTime", "2026-03-02T10:00:00.25"),
            ]
        elif case == 4:
            spans[1]["attributes"] = [attr("gen_ai.usage.input_tokens", "many")]  # refused
        elif case == 5:
            spans[2]["spanId"] = "xyz"  # unreadable span
        elif case == 6:
            spans[0]["parentSpanId"] = "00000000000000ff"  # a parent in no input
        if case == 7:
            lines.append(request(spans, project=False))  # no project
        elif case == 8:
            lines.append(b"{not json\n")
        elif case == 9:
            lines.append(b"\n")
        elif case == 10:
            lines.append(b'{"resourceSpans": 3}\n')
        else:
            lines.append(request(spans))
    return lines


def converted(
    path: str, jobs: int, strict: bool = False, project: str | None = None
) -> tuple[bytes, dict[str, Any], list[Diagnostic]]:
    out: list[bytes] = []
    said: list[Diagnostic] = []
    report = otlp_convert.convert_spans(
        [path], out.append, project=project, strict=strict, on_diagnostic=said.append, jobs=jobs
    )
    return b"".join(out), report.to_dict(), said


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Workers for a small file, in blocks of a few lines; the pools forked, listed."""
    monkeypatch.setattr(otlp_convert, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(otlp_blocks, "BLOCK_BYTES", 8 << 10)
    forked: list[object] = []
    fork = otlp_convert.fork_pool

    def fork_pool(jobs: int) -> Any:
        forked.append(fork(jobs))
        return forked[-1]

    monkeypatch.setattr(otlp_convert, "fork_pool", fork_pool)
    return forked


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_workers_write_the_same_lines_and_say_the_same(
    tmp_path: Path, small_blocks: list[object], strict: bool, gz: bool
) -> None:
    data = b"".join(otlp_lines(150))
    path = tmp_path / ("spans.jsonl.gz" if gz else "spans.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    alone = converted(str(path), 0, strict)
    assert small_blocks == []  # (none asked for)
    pooled = converted(str(path), 2, strict)
    assert len(small_blocks) == 1 and small_blocks[0] is not None
    assert pooled == alone
    lines, report, said = pooled
    assert len(data) > 8 * otlp_blocks.BLOCK_BYTES  # many blocks
    codes = {d.code for d in said}
    assert {"otlp-duplicate-span", "otlp-end-before-start", "otlp-weave-refuses", "json"} <= codes
    assert report["written"] == len(lines.splitlines()) > 200
    assert report["not_converted"] > 0 and report["warnings" if not strict else "errors"] > 0
    # and what convert_otlp (no workers at all) writes and says
    plain: list[bytes] = []
    report_plain = convert_otlp([str(path)], plain.append, strict=strict)
    assert b"".join(plain) == lines and report_plain.to_dict() == report


def test_stdin_with_workers_as_without(tmp_path: Path) -> None:
    """From stdin (big by rule: its run forks workers) as with TRACECLI_JOBS=0."""
    data = b"".join(otlp_lines(60))
    runs = {}
    for jobs in ("0", "2"):
        here = tmp_path / jobs  # (the summary names the output file: the same name)
        here.mkdir()
        env = {**os.environ, "TRACECLI_JOBS": jobs, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "tracecli", "convert", "-", "--to", "weave", "-o", "out"]
        got = subprocess.run(cmd, input=data, capture_output=True, env=env, cwd=here, timeout=120)
        runs[jobs] = (got.returncode, got.stderr, (here / "out").read_bytes())
    assert runs["2"] == runs["0"]
    assert runs["0"][0] == 1 and b"already read at <stdin>:2" in runs["0"][1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def test_ctrl_c_with_workers_exits_130_and_leaves_no_file(tmp_path: Path) -> None:
    """Ctrl-C (to the whole process group, as a terminal sends it) while workers run: one
    line, exit 130, no output file or temporary one, and the workers gone."""
    env = {**os.environ, "TRACECLI_JOBS": "2", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "tracecli", "convert", "-", "--to", "weave", "-o", str(out)]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"".join(otlp_lines(40)))  # stdin stays open: it waits for more
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "convert forked no workers"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.decode().strip().splitlines() == [f"tracecli: interrupted; {out} was not written"]
    assert os.listdir(tmp_path) == []
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "a worker outlived the run"
