"""`kill -9` while the rejected-records file is being written: its temporary file (mode 0600,
beside the file, holding private records) must not pile up, one per killed run; the next
run's own file replaces the rejected file as usual. Embedded store: no server needed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson

from tests.support.uploadkit import gen_calls, run_cli, start_cli, write_flat


def test_a_killed_runs_temporary_rejected_file_is_cleaned_up_by_the_next_run(
    tmp_path: Path,
) -> None:
    calls = gen_calls(30_000, seed=51, project="rejected/kill")
    file = write_flat(tmp_path / "calls.jsonl", calls)
    lines = file.read_bytes().splitlines(keepends=True)
    bad = orjson.loads(lines[1])
    bad["op_name"] = "o" * 200  # refused by validation: the rejected file starts at once
    lines[1] = orjson.dumps(bad) + b"\n"
    file.write_bytes(b"".join(lines))
    args = ["upload", str(file), "--db", str(tmp_path / "store.db"), "--chunk-size", "50"]
    args += ["--rejected", str(tmp_path / "rej.jsonl"), "--format", "json"]
    for n in range(2):
        proc = start_cli(args, tmp_path, n, TRACECLI_JOBS="1")
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f".rej.jsonl.{proc.pid}.*.tmp")):
            assert proc.poll() is None, "the upload ended before its rejected file was begun"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    # the second run removed the first one's; its own is left until the next run
    assert [p.name.split(".")[3] for p in tmp_path.glob(".rej.jsonl.*.tmp")] == [str(proc.pid)]
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    report = orjson.loads(r.stdout)
    assert report["rejected"] == 2 and report["unsent"] == 0, report
    assert list(tmp_path.glob(".rej.jsonl.*")) == []
    kept = [orjson.loads(x) for x in (tmp_path / "rej.jsonl").read_bytes().splitlines()]
    assert [r["id"] for r in kept] == [bad["id"]] * 2  # the start refused, its end with it
    assert kept[0]["_tracecli"]["line"] == 2 and kept[0]["op_name"] == bad["op_name"]
