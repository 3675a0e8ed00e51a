"""Inputs that are not what upload and validate expect: unreadable, another tool's format, a
JSON array; a folder that cannot be written; the note about an old rejected file; SIGTERM.

tracecli runs as a subprocess (`python -m tracecli`), the embedded store as the target (the
same code path as a server; the servers' side is tests/test_outage.py). The tests run as
root here, and root ignores file modes: the subprocess gives up CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (it stays root, so its interpreter stays readable) and a mode then
means what it says; the tests skip when that is not possible.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.support.uploadkit import cli_env, run_cli, tracecli
from tests.support.validate_kit import P, call, complete, end, new_id, start, write_jsonl
from tracecli.inputs.json_values import iter_json_values
from tracecli.inputs.reader import Source
from tracecli.inputs.sniff import sniff
from tracecli.inputs.streams import count_lines
from tracecli.store.db import Store

FP_PROJECT = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_caps() -> None:
    """In the child before exec: without these, even root obeys file modes."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(
    *args: str, cwd: Path, modes_apply: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    caps = _drop_file_caps if modes_apply else None
    return run_cli(*args, timeout=timeout, cwd=cwd, preexec_fn=caps)


@pytest.fixture
def modes_apply(tmp_path: Path) -> Callable[[Path], None]:
    """Skip unless a file of mode 000 is unreadable to a subprocess run with `modes_apply`."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        r = subprocess.run(
            ["cat", str(probe)], capture_output=True, preexec_fn=_drop_file_caps, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot run a process that obeys file modes here: {exc}")
    if r.returncode == 0:
        pytest.skip("file modes are not enforced for the test process (root, no way to drop it)")

    def restore(path: Path) -> None:
        path.chmod(0o755)

    return restore


def error_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("tracecli: error")]


# -- unreadable inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "upload"])
def test_an_unreadable_file_is_one_line_naming_it_and_the_os_reason(
    tmp_path: Path, modes_apply: Callable[[Path], None], command: str
) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", call())
    f.chmod(0)
    extra = ["--db", str(tmp_path / "db.sqlite")] if command == "upload" else []
    r = run(command, str(f), *extra, cwd=tmp_path, modes_apply=True)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert error_lines(r.stderr) == [
        f"tracecli: error: {f}: cannot read the file: Permission denied"
    ], r.stderr


@pytest.mark.parametrize("command", ["validate", "upload"])
def test_an_unreadable_directory_is_not_reported_as_empty(
    tmp_path: Path, modes_apply: Callable[[Path], None], command: str
) -> None:
    d = tmp_path / "traces"
    write_jsonl(d / "sub" / "t.jsonl", call())
    (d / "sub").chmod(0)
    try:
        extra = ["--db", str(tmp_path / "db.sqlite")] if command == "upload" else []
        r = run(command, str(d), *extra, cwd=tmp_path, modes_apply=True)
    finally:
        modes_apply(d / "sub")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "no trace files" not in r.stderr
    assert error_lines(r.stderr) == [
        f"tracecli: error: {d / 'sub'}: cannot read the directory: Permission denied"
    ], r.stderr


# -- the rejected-records file -----------------------------------------------------------------


@pytest.mark.slow
def test_a_read_only_working_directory_is_fine_when_nothing_is_rejected(
    tmp_path: Path, modes_apply: Callable[[Path], None]
) -> None:
    f = write_jsonl(tmp_path / "t.jsonl", call() + call())
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    db = tmp_path / "db.sqlite"
    try:
        r = run("upload", str(f), "--db", str(db), "--format", "json", cwd=ro, modes_apply=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["uploaded"] == 2
        assert list(ro.iterdir()) == []  # no rejected file, not even an empty one
        # something to reject: then the folder that cannot be written is said, exit 2
        bad = write_jsonl(tmp_path / "bad.jsonl", [end(new_id(), ended_at="yesterday")])
        r = run("upload", str(bad), "--db", str(db), cwd=ro, modes_apply=True)
    finally:
        modes_apply(ro)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = error_lines(r.stderr)
    assert "cannot write the rejected records to tracecli-rejected.jsonl" in line
    assert "Permission denied" in line and "--rejected" in line


@pytest.mark.slow
def test_the_note_about_an_earlier_rejected_file_is_said_once(tmp_path: Path) -> None:
    old = tmp_path / "tracecli-rejected.jsonl"
    old.write_text('{"id": "a"}\n{"id": "b"}\n')
    f = write_jsonl(tmp_path / "in" / "t.jsonl", call())
    db = str(tmp_path / "db.sqlite")
    first = run("upload", str(f), "--db", db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    notes = [x for x in first.stderr.splitlines() if "rejected by an earlier run" in x]
    assert notes == [
        "note: tracecli-rejected.jsonl holds 2 records rejected by an earlier run (none were "
        "rejected now): fix them and upload that file, or delete it"
    ], first.stderr
    again = run("upload", str(f), "--db", db, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "rejected by an earlier run" not in again.stderr, again.stderr
    old.write_text('{"id": "c"}\n')  # it changed: worth saying again
    third = run("upload", str(f), "--db", db, cwd=tmp_path)
    assert "holds 1 records rejected by an earlier run" in third.stderr, third.stderr


# -- other formats -------------------------------------------------------------------------------

OTLP = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": []}]}]}
LANGSMITH = {
    "id": "1f0c4a5e-0000-4000-8000-000000000001",
    "name": "ChatOpenAI",
    "run_type": "llm",
    "start_time": "2026-03-02T09:14:05",
    "dotted_order": "20260302T091405000000Z1f0c4a5e-0000-4000-8000-000000000001",
    "inputs": {},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        (
            "spans.jsonl",
            b"".join(orjson.dumps(OTLP) + b"\n" for _ in range(30)),
            "an OpenTelemetry OTLP JSON file, not Weave calls: `tracecli convert {path} "
            "--to weave` converts it",
        ),
        (
            "runs.jsonl",
            b"".join(orjson.dumps(LANGSMITH) + b"\n" for _ in range(30)),
            "a LangSmith run export, not Weave calls",
        ),
        (
            "calls.jsonl",
            b"id,op_name,started_at\n" + b"".join(b"%d,agent.run,2026\n" % i for i in range(30)),
            "a CSV file, not JSON lines",
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "upload", "upload-freeplay"])
def test_another_tools_format_is_named_once_per_file_with_a_hint(
    tmp_path: Path, command: str, name: str, content: bytes, said: str
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    extra = {
        "validate": [],
        "upload": ["--db", str(tmp_path / "db.sqlite")],
        "upload-freeplay": ["--target", "freeplay", "--dry-run", "--project", FP_PROJECT],
    }[command]
    r = run(command.split("-")[0], str(f), *extra, cwd=tmp_path)
    out = r.stdout + r.stderr
    if name == "spans.jsonl":
        # validate and upload (Freeplay too) read OpenTelemetry files (here: no spans)
        assert r.returncode == 0 and "convert" not in out and "Traceback" not in out, out
        return
    assert r.returncode == 1, out
    assert "Traceback" not in out
    mentions = [x for x in out.splitlines() if str(f) in x and "error" in x]
    assert len(mentions) == 1, out  # once for the file, not once per line
    assert said.format(path=f) in mentions[0], mentions
    assert not (tmp_path / "tracecli-rejected.jsonl").exists()  # no record of ours to reject


@pytest.mark.slow
def test_a_pretty_printed_json_array_is_read_as_records_with_their_lines(tmp_path: Path) -> None:
    cid, tid = new_id(), new_id()
    good = [complete(new_id(), new_id()) for _ in range(3)]
    bad = start(cid, tid, started_at="not a time")
    text = json.dumps([*good, bad, end(cid)], indent=2)
    f = tmp_path / "calls.json"
    f.write_text(text)
    # each record's first line: the `{` that opens it (the bad field is further down)
    firsts = [n for n, x in enumerate(text.splitlines(), 1) if x == "  {"]
    assert len(firsts) == 5
    start_line, end_line = firsts[3], firsts[4]
    r = run("validate", str(f), "--format", "json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["records"] == 5
    lines = {d["line"] for d in report["diagnostics"] if d["severity"] == "error"}
    assert lines == {start_line}, report["diagnostics"]
    # and uploaded from a directory (where .json files are read too): the good ones stored
    db = tmp_path / "db.sqlite"
    (tmp_path / "dir").mkdir()
    f.rename(tmp_path / "dir" / "calls.json")
    r = run("upload", str(tmp_path / "dir"), "--db", str(db), "--format", "json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["files"] == 1 and summary["uploaded"] == 3, summary
    rejected = (tmp_path / "tracecli-rejected.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["_tracecli"]["line"] for x in rejected) == [start_line, end_line]
    with Store(db) as store:
        assert store.count(P) == 3


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_the_json_array_reader_is_incremental_and_bounded(tmp_path: Path) -> None:
    """A 24 MB array: the first record comes out after one block is read, and memory
    stays at a few blocks and one record, not the file."""
    record = complete(new_id(), new_id(), inputs={"q": "x" * 2000})
    n = 10_000
    data = b"[\n" + b",\n".join(orjson.dumps(record, option=orjson.OPT_INDENT_2) for _ in range(n))
    data += b"\n]\n"
    assert len(data) > 20 << 20

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(size)

    stream = Counting(data)
    it = iter_json_values(stream, "big.json")
    first = next(it)
    assert not isinstance(first, Exception) and first.line == 2
    assert stream.tell() <= 1 << 17  # one or two blocks read, not the file
    tracemalloc.start()
    count = 1
    for _ in it:
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == n
    assert peak < 4 << 20, peak  # vs 24 MB of input
    assert sniff(data[:65536]).fmt == "json"


def test_a_json_array_on_stdin_is_read_as_records(tmp_path: Path) -> None:
    records = call() + call()
    r = subprocess.run(
        tracecli("validate", "-"),
        input=json.dumps(records, indent=2),
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("1 file, 4 records, 2 calls: 0 errors"), r.stdout


def test_count_lines_from_an_offset(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": 3}')
    assert count_lines(str(f)) == 3
    assert count_lines(str(f), len(b'{"a": 1}\n')) == 2
    assert count_lines(str(f), f.stat().st_size) == 0
    assert count_lines(str(tmp_path / "missing")) is None


def test_source_reads_a_gzipped_array(tmp_path: Path) -> None:
    records = call() + call()
    path = write_jsonl(tmp_path / "a.json.gz", [], gz=True)
    import gzip

    path.write_bytes(gzip.compress(json.dumps(records, indent=1).encode()))
    src = Source.open(str(path))
    assert src.fmt == "json"
    values = [v for _, v in src]  # type: ignore[misc]
    assert values == records


# -- SIGTERM ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_stops_validate_like_ctrl_c_with_exit_143(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        tracecli("validate", "-"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"".join(orjson.dumps(r) + b"\n" for r in call()))
        proc.stdin.flush()
        time.sleep(3)  # started and reading (stdin stays open: it waits for more)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert b"interrupted" in err and b"Traceback" not in err
