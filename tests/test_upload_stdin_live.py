"""`tracecli upload -` from a pipe that stays open (`tail -F app.jsonl | tracecli upload -`):
records are sent soon after they arrive, a start pairs with an end that comes later,
and SIGTERM or the pipe's end sends everything read. A real writer (this test process)
writes slowly into tracecli's stdin; a real `tracecli serve` behind the fault proxy
says what arrived, and when (before the pipe closes)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import line, received, wait_for
from tests.support.uploadkit import (
    cli_env,
    diff_calls,
    gen_calls,
    read_back,
    tracecli,
    tracecli_serve,
)


def _uploader(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        tracecli("upload", "-", "--server", url, "--format", "json", *extra),
        stdin=subprocess.PIPE,
        stdout=(tmp_path / "out.txt").open("wb"),
        stderr=(tmp_path / "err.txt").open("wb"),
        env=cli_env(),
        cwd=tmp_path,
    )


def _write(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(data)
    proc.stdin.flush()


def _end(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_records_from_an_open_pipe_are_sent_before_it_closes_and_pair_later(tmp_path):
    calls = gen_calls(4, seed=81)
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = _uploader(tmp_path, proxy.url)
        try:
            _write(proc, line("call", {**calls[0][0], **calls[0][1]}))
            _write(proc, line("start", calls[1][0]))
            wait_for(lambda: calls[0][0]["id"] in received(proxy), 15, proc)
            time.sleep(1.5)  # the end comes well after its start, the pipe still open
            _write(proc, line("end", calls[1][1]) + line("call", {**calls[2][0], **calls[2][1]}))
            wait_for(lambda: len(received(proxy)) == 3, 15, proc)
            assert proxy.sends(calls[1][0]["id"], "complete") == 1  # paired: one call
            _write(proc, line("start", calls[3][0]))  # its end never comes
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
        code = _end(proc)
        err = (tmp_path / "err.txt").read_text()
        assert code == 0, err
        assert "run the same command again" not in err
        assert proxy.sends(calls[3][0]["id"], "start") == 1  # went as a running call
        assert proxy.duplicates() == 0
        stored = {c["id"]: c for c in read_back(serve.url)}
        assert diff_calls(calls[:3], [stored[c[0]["id"]] for c in calls[:3]]) == []
        assert calls[3][0]["id"] in stored
    report = orjson.loads((tmp_path / "out.txt").read_bytes().splitlines()[-1])
    assert report["records"] == 5 and report["uploaded"] == 4
    assert {d["path"] for d in report["diagnostics"]} == {"<stdin>"}
    said = [(d["line"], d["code"]) for d in report["diagnostics"]]
    assert (2, "missing-parent") in said and len(said) == len(set(said)) == report["warnings"]
    assert not list((Path(os.environ["XDG_STATE_HOME"]) / "tracecli" / "stdin").iterdir())


def test_sigterm_mid_stream_sends_everything_read(tmp_path):
    calls, open_call = gen_calls(31, seed=82)[:30], gen_calls(31, seed=82)[30]
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = _uploader(tmp_path, proxy.url)
        try:
            _write(proc, b"".join(line("call", {**s, **e}) for s, e in calls[:20]))
            time.sleep(1.5)  # live by now
            _write(proc, b"".join(line("call", {**s, **e}) for s, e in calls[20:]))
            _write(proc, line("start", open_call[0]))
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)  # at once: the last lines not sent yet
            code = _end(proc)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
        err = (tmp_path / "err.txt").read_text()
        assert code == 128 + signal.SIGTERM, err
        assert "every record read from stdin was sent" in err
        assert "run the same command again" not in err
        assert len(received(proxy)) == 31, err  # the 30 calls and the open start
        stored = [c for c in read_back(serve.url) if c["id"] != open_call[0]["id"]]
        assert diff_calls(calls, stored) == []


def test_sigterm_with_the_server_down_keeps_what_was_read_and_says_so(tmp_path):
    calls = gen_calls(5, seed=83)
    with tracecli_serve(tmp_path / "serve") as serve:
        proc = _uploader(tmp_path, serve.url, "--max-retry-time", "1")
        try:
            _write(proc, line("call", {**calls[0][0], **calls[0][1]}))
            wait_for(lambda: len(read_back(serve.url)) == 1, 15, proc)
            serve.stop()  # the server goes away
            _write(proc, b"".join(line("call", {**s, **e}) for s, e in calls[1:]))
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            code = _end(proc, 60)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
    err = (tmp_path / "err.txt").read_text()
    assert code != 0, err
    assert "4 records read from stdin were not sent" in err, err
    assert "run the same command again" not in err
    kept = Path(err.split("they are kept in ")[1].split(":")[0])
    assert kept.read_bytes().count(b"\n") == 5  # stdin as read, the rest resumable


def test_a_lone_bracket_then_a_pause_then_records_of_the_array_go_before_its_end(tmp_path):
    calls = gen_calls(3, seed=84)
    records = [orjson.dumps({"type": "call", **s, **e}) for s, e in calls]
    with tracecli_serve(tmp_path / "serve") as serve:
        proc = _uploader(tmp_path, serve.url)
        try:
            _write(proc, b"[\n")
            time.sleep(1.5)  # a writer that pauses after its `[`
            _write(proc, records[0] + b",\n" + records[1] + b",\n")
            wait_for(lambda: len(read_back(serve.url)) == 2, 15, proc)  # the array still open
            _write(proc, records[2] + b"\n]\n")
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
        code = _end(proc)
        assert code == 0, (tmp_path / "err.txt").read_text()
        assert diff_calls(calls, read_back(serve.url)) == []
    report = orjson.loads((tmp_path / "out.txt").read_bytes().splitlines()[-1])
    assert (report["records"], report["uploaded"], report["unsent"]) == (3, 3, 0)


def test_what_decides_between_sending_as_it_comes_and_reading_to_the_end():
    from tracecli.upload.stdin_spool import whole_json_line

    assert whole_json_line(b'{"type": "call"}\n{"ty') is True
    assert whole_json_line(b'\xef\xbb\xbf\n  {"type": "start"}\n') is True
    assert whole_json_line(b'{"type": "ca') is None  # no whole line yet: wait
    assert whole_json_line(b"[\n") is True  # an array: read up to its last whole record
    assert whole_json_line(b'{\n  "type": "call",') is True  # pretty-printed records
    assert whole_json_line(b"[") is None  # a lone `[`: wait for more
    assert whole_json_line(b"\x1f\x8b\x08\x00") is False  # gzip
    assert whole_json_line(b"type: call\n") is False  # YAML


def test_a_named_fifo_a_service_keeps_open_is_sent_as_it_comes(tmp_path):
    calls = gen_calls(3, seed=85)
    fifo = tmp_path / "app.fifo"
    os.mkfifo(fifo)
    with tracecli_serve(tmp_path / "serve") as serve:
        proc = subprocess.Popen(
            tracecli("upload", str(fifo), "--server", serve.url),
            stdout=(tmp_path / "out.txt").open("wb"),
            stderr=(tmp_path / "err.txt").open("wb"),
            stdin=subprocess.DEVNULL,
            env=cli_env(),
            cwd=tmp_path,
        )
        with fifo.open("wb", buffering=0) as writer:  # waits for tracecli to open it
            writer.write(b"".join(line("call", {**s, **e}) for s, e in calls[:2]))
            wait_for(lambda: len(read_back(serve.url)) == 2, 15, proc)
            writer.write(line("call", {**calls[2][0], **calls[2][1]}) + b"not json\n")
        code = _end(proc)
        err = (tmp_path / "err.txt").read_text()
        assert code == 1, err  # the bad line is rejected, named by the FIFO's path
        assert f"{fifo}:4: error" in err, err
        rejected = orjson.loads((tmp_path / "tracecli-rejected.jsonl").read_bytes())
        assert rejected["_tracecli"]["source"] == str(fifo)  # not the spool
        assert diff_calls(calls, read_back(serve.url)) == []


def test_a_fast_pipe_that_ends_is_one_ordinary_upload(tmp_path):
    calls = gen_calls(50, seed=86)
    data = b"".join(line("call", {**s, **e}) for s, e in calls) + b"{bad\n"
    with tracecli_serve(tmp_path / "serve") as serve:
        r = subprocess.run(
            tracecli("upload", "-", "--server", serve.url),
            input=data,
            capture_output=True,
            env=cli_env(),
            cwd=tmp_path,
            timeout=60,
        )
        assert r.returncode == 1, r.stderr
        assert b"<stdin>:51: error" in r.stderr
        assert diff_calls(calls, read_back(serve.url)) == []
    spools = Path(os.environ["XDG_STATE_HOME"]) / "tracecli" / "stdin"
    assert spools.is_dir() and not list(spools.iterdir())  # the spool is gone


def test_no_state_folder_to_spool_in_is_the_usual_clear_error(tmp_path):
    calls = gen_calls(3, seed=87)
    (tmp_path / "file").write_bytes(b"")  # the state folder cannot be made under a file
    with tracecli_serve(tmp_path / "serve") as serve:
        r = subprocess.run(
            tracecli("upload", "-", "--server", serve.url),
            input=b"".join(line("call", {**s, **e}) for s, e in calls),
            capture_output=True,
            env=cli_env(XDG_STATE_HOME=str(tmp_path / "file" / "state")),
            cwd=tmp_path,
            timeout=60,
        )
        # what any upload says without a state folder (its journal), never a traceback
        assert r.returncode == 2, r.stderr
        assert b"journal" in r.stderr and b"Traceback" not in r.stderr
