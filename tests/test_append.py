"""A file the app appends to, uploaded again and again (cron): each run sends only what is
new; rotation by rename and copytruncate send every call once; a half-written last line
waits. Real servers on 127.0.0.1 (`tracecli serve`, weave-ref) behind a counting proxy
(tests/support/faultproxy.py with no faults), which counts what the server received per call id.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.uploadkit import (
    diff_calls,
    gen_calls,
    read_back,
    run_cli,
    tracecli_serve,
    weave_ref,
)

Call = tuple[dict[str, Any], dict[str, Any]]


@pytest.fixture
def proxied(tmp_path):
    with tracecli_serve(tmp_path / "serve") as s, FaultProxy(s.url) as proxy:
        yield s, proxy


def line(kind: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, **body}) + b"\n"


def whole(calls: list[Call]) -> bytes:
    return b"".join(line("call", {**s, **e}) for s, e in calls)


def upload(path: Path | str, url: str, *more: str | Path) -> dict[str, Any]:
    r = run_cli("upload", str(path), *map(str, more), "--server", url, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return orjson.loads(r.stdout)


def sent(proxy: FaultProxy) -> set[tuple[str, str]]:
    """What the server received since the last reset, as (kind, call id)."""
    assert proxy.duplicates() == 0, "something was sent twice"
    return set(proxy.forwarded_ids)


def ids(calls: list[Call], kind: str = "complete") -> set[tuple[str, str]]:
    return {(kind, s["id"]) for s, _ in calls}


@pytest.mark.slow
def test_appended_twice_each_run_sends_exactly_the_new_records(tmp_path, proxied):
    serve, proxy = proxied
    calls = gen_calls(320, seed=31)
    app = tmp_path / "app.jsonl"
    spanning = calls[-1]  # started in the first part, ended in the third
    app.write_bytes(whole(calls[:100]) + line("start", spanning[0]))
    first = upload(app, proxy.url)
    assert first["uploaded"] == 101
    assert sent(proxy) == ids(calls[:100]) | {("start", spanning[0]["id"])}
    proxy.reset()
    with app.open("ab") as f:
        f.write(whole(calls[100:200]))
    second = upload(app, proxy.url)
    assert (second["uploaded"], second["changed_files"]) == (100, [])
    assert sent(proxy) == ids(calls[100:200])  # only the new records
    proxy.reset()
    with app.open("ab") as f:
        f.write(whole(calls[200:319]) + line("end", spanning[1]))
    third = upload(app, proxy.url)
    assert third["uploaded"] == 119 and third["ends_uploaded"] == 1
    assert sent(proxy) == ids(calls[200:319]) | {("end", spanning[0]["id"])}
    assert diff_calls(calls, read_back(serve.url)) == []  # the spanning call is whole
    proxy.reset()
    again = upload(app, proxy.url)
    assert (again["uploaded"], again["requests"]) == (0, 0)


@pytest.mark.slow
def test_a_grown_file_is_read_from_where_the_stored_part_ends(tmp_path, proxied):
    """The stored part is not read again: a byte changed in its middle (not in the head or
    tail an append is recognised by) goes unnoticed, which only a seek explains."""
    _serve, proxy = proxied
    calls = gen_calls(700, seed=32)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls[:600]))
    assert app.stat().st_size > 200_000
    upload(app, proxy.url)
    data = bytearray(app.read_bytes())
    middle = data.index(b'"type":"call"', 100_000)
    assert data[middle - 1 : middle] == b"{"
    data[middle - 1 : middle] = b"!"  # not JSON any more: rejected if it were read
    app.write_bytes(bytes(data) + whole(calls[600:]))
    proxy.reset()
    out = upload(app, proxy.url)
    assert (out["uploaded"], out["rejected"], out["errors"]) == (100, 0, 0)
    assert sent(proxy) == ids(calls[600:])
    assert upload(app, proxy.url, "--restart", "--dry-run")["rejected"] == 1  # it would be


@pytest.mark.slow
def test_a_half_written_last_line_waits_for_the_next_run(tmp_path, proxied):
    serve, proxy = proxied
    calls = gen_calls(12, seed=33)
    app = tmp_path / "app.jsonl"
    tail = line("call", {**calls[10][0], **calls[10][1]})
    app.write_bytes(whole(calls[:10]) + tail[:40])  # the writer is in the middle of a line
    first = upload(app, proxy.url)
    assert (first["uploaded"], first["rejected"]) == (10, 1)  # as before: said, not sent
    assert sent(proxy) == ids(calls[:10])
    proxy.reset()
    with app.open("ab") as f:
        f.write(tail[40:])  # the line is finished
    second = upload(app, proxy.url)
    assert (second["uploaded"], second["rejected"]) == (1, 0)
    assert sent(proxy) == ids(calls[10:11])
    proxy.reset()
    # a whole record without its newline is sent, and read again (skipped) next time
    with app.open("ab") as f:
        f.write(line("call", {**calls[11][0], **calls[11][1]}).rstrip(b"\n"))
    assert upload(app, proxy.url)["uploaded"] == 1
    with app.open("ab") as f:
        f.write(b"\n")
    assert upload(app, proxy.url)["uploaded"] == 0
    assert sent(proxy) == ids(calls[11:12])
    assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.slow
def test_an_appended_gzip_file_sends_only_the_new_records(tmp_path, proxied):
    """gzip cannot be seeked: the file is decompressed again and its stored records are
    skipped (a new gzip member appended keeps the compressed bytes seen before)."""
    serve, proxy = proxied
    calls = gen_calls(120, seed=37)
    app = tmp_path / "app.jsonl.gz"
    app.write_bytes(gzip.compress(whole(calls[:80])))
    assert upload(app, proxy.url)["uploaded"] == 80
    proxy.reset()
    with app.open("ab") as f:
        f.write(gzip.compress(whole(calls[80:])))
    out = upload(app, proxy.url)
    assert (out["uploaded"], out["skipped"], out["changed_files"]) == (40, 80, [])
    assert sent(proxy) == ids(calls[80:])
    assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.slow
def test_rotation_by_rename_sends_every_call_once(tmp_path, proxied):
    serve, proxy = proxied
    calls = gen_calls(300, seed=34)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls[:100]))
    upload(app, proxy.url)
    with app.open("ab") as f:
        f.write(whole(calls[100:150]))
    app.rename(tmp_path / "app.jsonl.1")  # the logger rotates...
    app.write_bytes(whole(calls[150:250]))  # ...and goes on in a new file
    out = upload(app, proxy.url, tmp_path / "app.jsonl.1")  # the new file first
    assert out["uploaded"] == 150 and out["changed_files"] == []
    with app.open("ab") as f:
        f.write(whole(calls[250:]))
    upload(tmp_path / "app.jsonl.1", proxy.url, app)
    assert sent(proxy) == ids(calls)  # every call, none twice
    assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.slow
def test_copytruncate_sends_every_call_once(tmp_path, proxied):
    serve, proxy = proxied
    calls = gen_calls(300, seed=35)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls[:100]))
    upload(app, proxy.url)
    with app.open("ab") as f:
        f.write(whole(calls[100:150]))
    shutil.copyfile(app, tmp_path / "app.jsonl.1")  # copytruncate: copy, then truncate
    with app.open("r+b") as f:
        f.truncate(0)
    app.write_bytes(whole(calls[150:250]))
    out = upload(app, proxy.url, tmp_path / "app.jsonl.1")
    assert out["uploaded"] == 150
    with app.open("ab") as f:
        f.write(whole(calls[250:]))
    upload(app, proxy.url, tmp_path / "app.jsonl.1")
    assert sent(proxy) == ids(calls)
    assert diff_calls(calls, read_back(serve.url)) == []


@pytest.mark.slow
@pytest.mark.weave_ref
def test_a_call_started_in_one_run_and_ended_in_the_next_is_whole_at_weave_ref(tmp_path):
    calls = gen_calls(40, seed=36)
    app = tmp_path / "app.jsonl"
    open_call = calls[20]
    app.write_bytes(whole(calls[:20]) + line("start", open_call[0]))
    with weave_ref(tmp_path / "ref") as ref, FaultProxy(ref.url) as proxy:
        assert upload(app, proxy.url)["uploaded"] == 21
        with app.open("ab") as f:
            f.write(line("end", open_call[1]) + whole(calls[21:]))
        second = upload(app, proxy.url)
        assert (second["uploaded"], second["ends_uploaded"], second["rejected"]) == (19, 1, 0)
        assert sent(proxy) == ids(calls[:20] + calls[21:]) | {
            ("start", open_call[0]["id"]),
            ("end", open_call[0]["id"]),
        }
        assert diff_calls(calls, read_back(ref.url)) == []


def test_a_source_resumed_at_an_offset_reads_only_the_rest(tmp_path):
    """The Freeplay upload reads records through `Source`: resumed, it seeks (the part
    before is never read: here it is not even JSON) and numbers lines as the file does."""
    from tracecli.inputs.reader import Source

    f = tmp_path / "a.jsonl"
    head = b"not json at all\n" * 3
    f.write_bytes(head + b'{"n": 3}\n\n{"n": 5}\n')
    src = Source.open(str(f))
    assert src.resume_at(len(head), 3)
    got = [(loc.line, value) for loc, value in src]
    assert got == [(4, {"n": 3}), (6, {"n": 5})]
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    assert not Source.open(str(gz)).resume_at(len(head), 3)  # gzip: read whole, skipped


@pytest.mark.slow
def test_cron_runs_after_a_bad_line_send_only_what_is_new_and_name_it_once_a_run(tmp_path, proxied):
    """A line that is not JSON in the middle of a file that grows (cron, no --follow): every
    run sends only the new records (the bad line holds the resume point, so a run reads the
    file again from it, but the stored records after it are skipped, never sent again) and
    says the bad line once, as file:line, with exit 1; the rejected file holds it once."""
    serve, proxy = proxied
    calls = gen_calls(200, seed=37)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls[:50]) + b'{"type": "call", not json\n' + whole(calls[50:100]))
    for n, new in enumerate((calls[100:150], calls[150:])):
        r = run_cli("upload", str(app), "--server", proxy.url, "--format", "json", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        out = orjson.loads(r.stdout)
        assert (out["uploaded"], out["rejected"]) == (100 if n == 0 else 50, 1)
        assert r.stderr.count(f"{app}:51: error:") == 1, r.stderr
        assert "Traceback" not in r.stderr
        kept = (tmp_path / "tracecli-rejected.jsonl").read_bytes().splitlines()
        assert [orjson.loads(x)["_tracecli"]["line"] for x in kept] == [51]
        with app.open("ab") as f:
            f.write(whole(new))
    r = run_cli("upload", str(app), "--server", proxy.url, "--format", "json", cwd=tmp_path)
    assert orjson.loads(r.stdout)["uploaded"] == 50
    assert sent(proxy) == ids(calls)  # every call once, none twice
    assert diff_calls(calls, read_back(serve.url)) == []
