"""The rejected-records file: originals with reasons, atomic, private, replayable."""

from __future__ import annotations

import datetime as dt
import os
import random
import stat
import threading

import orjson
import pytest

from tracecli.check.records import parse_record
from tracecli.diagnostics import Location, UsageError
from tracecli.journal.rejected import RejectedWriter
from tracecli.targets.outcome import Outcome, extract_reason

START = {
    "type": "start",
    "project_id": "ent/proj",
    "id": "0190c0a1-0000-7000-8000-000000000001",
    "trace_id": "0190c0a1-0000-7000-8000-0000000000aa",
    "op_name": "agent",
    "started_at": "2024-07-01T12:00:00Z",
    "attributes": {},
    "inputs": {"q": "hi"},
}


def lines(path):
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_writes_originals_with_meta(tmp_path):
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out) as w:
        w.add(START, path="in.jsonl", line=3, reason="HTTP 400: bad id", status=400)
        w.add({"x": 1}, path="in.jsonl", line=9, reason="fits no shape")
        assert not out.exists()  # only on close
        assert w.count == 2
    got = lines(out)
    assert got[0]["_tracecli"] == {
        "source": "in.jsonl",
        "line": 3,
        "reason": "HTTP 400: bad id",
        "status": 400,
    }
    assert {k: v for k, v in got[0].items() if k != "_tracecli"} == START
    assert got[1]["_tracecli"]["status"] is None
    assert w.written == out


def test_mode_0600_and_atomic(tmp_path):
    out = tmp_path / "rej.jsonl"
    out.write_text("old content\n")
    os.chmod(out, 0o644)
    w = RejectedWriter(out)
    w.add(START, path="a", line=1, reason="r")
    # while open: the old file is intact, the new one is a hidden temp file beside it
    assert out.read_text() == "old content\n"
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".rej.jsonl.")]
    assert len(temps) == 1 and stat.S_IMODE(temps[0].stat().st_mode) == 0o600
    w.close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["rej.jsonl"]
    assert lines(out)[0]["_tracecli"]["line"] == 1


def test_replayable_the_meta_key_is_ignored_on_input(tmp_path):
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out) as w:
        w.add(START, path="a", line=1, reason="server said no", status=422)
    rec = lines(out)[0]
    parsed = parse_record(Location(str(out), 1), rec)
    assert parsed.record is not None and not parsed.diagnostics
    assert parsed.record.original() == START


def test_previous_meta_is_replaced_not_nested(tmp_path):
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out) as w:
        w.add({**START, "_tracecli": {"reason": "old"}}, path="b", line=2, reason="new")
    rec = lines(out)[0]
    assert rec["_tracecli"]["reason"] == "new" and list(rec).count("_tracecli") == 1


def test_non_object_records_are_kept(tmp_path):
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out) as w:
        w.add([1, 2], path="a", line=1, reason="expected a JSON object")
        w.add('{"broken": ', path="a", line=2, reason="invalid JSON")
    got = lines(out)
    assert got[0]["_tracecli"]["original"] == [1, 2]
    assert got[1]["_tracecli"]["original"] == '{"broken": '


def test_yaml_values_serialise(tmp_path):
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out) as w:
        w.add({"when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}, path="a.yaml", line=4, reason="r")
    assert lines(out)[0]["when"].startswith("2024-01-02T00:00:00")


def test_no_rejects_leaves_existing_file_alone(tmp_path):
    out = tmp_path / "rej.jsonl"
    out.write_text("from an earlier run\n")
    w = RejectedWriter(out)
    assert w.close() is None
    assert w.stale and out.read_text() == "from an earlier run\n"
    w2 = RejectedWriter(tmp_path / "none.jsonl")
    assert w2.close() is None and not w2.stale
    assert not (tmp_path / "none.jsonl").exists()


def test_a_new_run_with_rejects_replaces_the_file(tmp_path):
    out = tmp_path / "rej.jsonl"
    out.write_text('{"old": 1}\n{"old": 2}\n')
    with RejectedWriter(out) as w:
        w.add(START, path="a", line=1, reason="r")
    assert len(lines(out)) == 1


def test_replaying_the_rejected_file_itself(tmp_path):
    out = tmp_path / "rej.jsonl"
    out.write_text('{"a": 1}\n{"a": 2}\n')
    # interrupted: the input is left intact (its rejects are found again on resume)
    w = RejectedWriter(out, inputs=[out])
    w.add({"a": 1}, path=str(out), line=1, reason="r")
    assert w.close(complete=False) is None
    assert out.read_text() == '{"a": 1}\n{"a": 2}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["rej.jsonl"]
    # finished: replaced by what is still rejected
    w = RejectedWriter(out, inputs=["-", out])
    w.add({"a": 2}, path=str(out), line=2, reason="still bad")
    assert w.close(complete=True) == out
    assert [r["a"] for r in lines(out)] == [2]


def test_interrupted_run_publishes_what_it_has_when_not_an_input(tmp_path):
    out = tmp_path / "rej.jsonl"
    with pytest.raises(KeyboardInterrupt), RejectedWriter(out, inputs=[tmp_path / "in.jsonl"]) as w:
        w.add(START, path="in.jsonl", line=1, reason="r")
        raise KeyboardInterrupt
    assert len(lines(out)) == 1


def test_bad_target_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        RejectedWriter(tmp_path / "nope" / "rej.jsonl")
    with pytest.raises(UsageError, match="is a directory"):
        RejectedWriter(tmp_path)


def test_discard(tmp_path):
    out = tmp_path / "rej.jsonl"
    w = RejectedWriter(out)
    w.add(START, path="a", line=1, reason="r")
    w.discard()
    assert list(tmp_path.iterdir()) == []


def test_redacts_reasons(tmp_path):
    key = "sk-secret-abcdef123456"
    out = tmp_path / "rej.jsonl"
    with RejectedWriter(out, redact=lambda s: s.replace(key, "***")) as w:
        w.add(
            START,
            path="a",
            line=1,
            reason=f"server echoed {key}",
            diagnostics=[{"message": f"bad {key}", "line": 1}],
        )
    assert key.encode() not in out.read_bytes()
    assert lines(out)[0]["_tracecli"]["diagnostics"][0]["line"] == 1


def test_thread_safe(tmp_path):
    out = tmp_path / "rej.jsonl"
    w = RejectedWriter(out)

    def worker(k):
        for i in range(250):
            w.add({"k": k, "i": i}, path="a", line=k * 1000 + i, reason="r")

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    w.close()
    got = lines(out)
    assert len(got) == 1000 == w.count
    assert len({(r["k"], r["i"]) for r in got}) == 1000


def test_add_after_close_fails(tmp_path):
    w = RejectedWriter(tmp_path / "r.jsonl")
    w.close()
    with pytest.raises(RuntimeError):
        w.add({}, path="a", line=1, reason="r")


# -- reasons the server gives, as they reach the file --------------------------------------


@pytest.mark.parametrize(
    ("body", "text", "want"),
    [
        ({"reason": "Invalid call id"}, "", "Invalid call id"),
        ({"message": "Session not found"}, "", "Session not found"),
        ({"detail": "Not authenticated"}, "", "Not authenticated"),
        (
            {"detail": [{"loc": ["body", "batch", 0, "id"], "msg": "Field required"}]},
            "",
            "body.batch.0.id: Field required",
        ),
        ({"error": {"message": "rate limited"}}, "", "rate limited"),
        (None, "Bad Gateway", "Bad Gateway"),
        (None, "", "HTTP 502 Bad Gateway"),
    ],
)
def test_extract_reason(body, text, want):
    assert extract_reason(502, body, text) == want


def test_extract_reason_truncates_long_text():
    assert len(extract_reason(500, None, "x" * 5000)) == 300


def test_item_errors_map_batch_indexes():
    body = {
        "detail": [
            {"loc": ["body", "batch", 2, "start", "id"], "msg": "bad id"},
            {"loc": ["body", "batch", 2, "op_name"], "msg": "too long"},
            {"loc": ["body", "batch", 5], "msg": "not an object"},
            {"loc": ["query", "x"], "msg": "ignored"},
        ]
    }
    o = Outcome(action=None, status=422, body=body)  # type: ignore[arg-type]
    assert o.item_errors == {2: "start.id: bad id; op_name: too long", 5: "not an object"}


# -- end to end: `tracecli upload` against real servers ------------------------------------

E2E_KEY_FIELDS = ("id", "op_name", "trace_id")


def complete_records(n: int, proj: str) -> list[dict]:
    from tests.support.uploadkit import gen_calls

    return [{**s, **e} for s, e in gen_calls(n, seed=random.randrange(1 << 40), project=proj)]


def write_jsonl(path, records) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def upload_json(file, url, cwd, *args):
    from tests.support.uploadkit import run_cli

    r = run_cli("upload", str(file), "--server", url, "--format", "json", *args, cwd=cwd,
                TRACECLI_RETRY_BASE_DELAY="0.02", TRACECLI_RETRY_MAX_DELAY="0.2")  # fmt: skip
    assert r.stdout.strip().startswith("{"), r.stderr[-3000:]
    return r, orjson.loads(r.stdout)


def stored_ids(url, proj) -> list[str]:
    from tests.support.uploadkit import read_back

    return [c["id"] for c in read_back(url, proj)]


@pytest.mark.slow
def test_three_bad_records_among_a_thousand(tmp_path, serve):
    """Refused by validation: 997 stored, 3 in the rejected file with reasons, exit 1;
    the fixed rejected file then uploads cleanly."""
    proj = f"rej/local-{random.randrange(1 << 30):x}"
    recs = complete_records(1000, proj)
    good_ops = {i: recs[i]["op_name"] for i in (10, 500, 998)}
    recs[10]["id"] = recs[10]["id"].upper()  # ids are lowercase UUIDs
    recs[500]["op_name"] = "o" * 129  # at most 128 characters
    recs[998]["started_at"] = "yesterday"  # not a datetime
    bad_ids = {recs[10]["id"].lower(), recs[500]["id"], recs[998]["id"]}
    file = tmp_path / "calls.jsonl"
    write_jsonl(file, recs)
    r, summary = upload_json(file, serve.url, tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    assert summary["uploaded"] == 997 and summary["rejected"] == 3, summary
    ids = stored_ids(serve.url, proj)
    assert len(ids) == len(set(ids)) == 997 and not bad_ids & set(ids)
    rej_file = tmp_path / "tracecli-rejected.jsonl"
    assert summary["rejected_file"] and (tmp_path / summary["rejected_file"]).resolve() == rej_file
    assert stat.S_IMODE(rej_file.stat().st_mode) == 0o600
    rejected = lines(rej_file)
    assert [x["_tracecli"]["line"] for x in rejected] == [11, 501, 999]
    for x in rejected:
        assert x["_tracecli"]["source"].endswith("calls.jsonl")
        assert x["_tracecli"]["reason"]
    reasons = " | ".join(x["_tracecli"]["reason"] for x in rejected)
    assert "id" in reasons and "op_name" in reasons and "started_at" in reasons, reasons
    # the originals, as read
    assert {k: v for k, v in rejected[1].items() if k != "_tracecli"} == recs[500]
    # the user fixes them in place (keeping _tracecli) and uploads the file again
    rejected[0]["id"] = rejected[0]["id"].lower()
    rejected[1]["op_name"] = good_ops[500]
    rejected[2]["started_at"] = recs[997]["started_at"]
    write_jsonl(rej_file, rejected)
    r, summary = upload_json(rej_file, serve.url, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert summary["uploaded"] == 3 and summary["rejected"] == 0, summary
    ids = stored_ids(serve.url, proj)
    assert len(ids) == len(set(ids)) == 1000


@pytest.mark.slow
def test_server_side_rejections_are_found_by_splitting(tmp_path, serve):
    """Records validation lets through but the server refuses (400, 422 naming the item,
    413): found by splitting the chunk, rejected with the server's status and message;
    the other calls of their chunks are stored."""
    from tests.support.faultproxy import FaultProxy, Faults

    proj = f"rej/server-{random.randrange(1 << 30):x}"
    recs = complete_records(1000, proj)
    recs[321]["inputs"]["blob"] = "b" * 300_000  # one call above the proxy's 256 KB
    refuse = {
        recs[5]["id"]: (400, "Invalid URI: weave:///nope"),
        recs[777]["id"]: (422, "value is not acceptable here"),
    }
    bad = {recs[5]["id"], recs[777]["id"], recs[321]["id"]}
    file = tmp_path / "calls.jsonl"
    write_jsonl(file, recs)
    with FaultProxy(serve.url, Faults(refuse=refuse, max_bytes=256 * 1024)) as proxy:
        r, summary = upload_json(file, proxy.url, tmp_path, "--chunk-size", "100")
        assert proxy.stats.refused >= 2 and proxy.stats.injected[413] >= 1
        assert r.returncode == 1, r.stderr[-2000:]
        assert summary["uploaded"] == 997 and summary["rejected"] == 3, summary
        ids = stored_ids(serve.url, proj)
        assert len(ids) == len(set(ids)) == 997 and not bad & set(ids)
        rej_file = tmp_path / "tracecli-rejected.jsonl"
        rejected = {x["id"]: x["_tracecli"] for x in lines(rej_file)}
        assert rejected.keys() == bad
        assert rejected[recs[5]["id"]]["status"] == 400
        assert "Invalid URI: weave:///nope" in rejected[recs[5]["id"]]["reason"]
        assert rejected[recs[777]["id"]]["status"] == 422
        assert "value is not acceptable here" in rejected[recs[777]["id"]]["reason"]
        assert rejected[recs[321]["id"]]["status"] == 413
        assert [rejected[recs[i]["id"]]["line"] for i in (5, 321, 777)] == [6, 322, 778]
        # the server changes its mind: the rejected file replays as it is
        proxy.configure(refuse={}, max_bytes=None)
        r, summary = upload_json(rej_file, proxy.url, tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert summary["uploaded"] == 3, summary
    ids = stored_ids(serve.url, proj)
    assert len(ids) == len(set(ids)) == 1000


@pytest.mark.slow
@pytest.mark.weave_ref
def test_an_op_ref_weave_refuses_is_rejected_before_sending(tmp_path):
    """An op ref weave's own server code cannot parse (it answers 400 Invalid URI) is caught
    by validation, so it is rejected with our reason and never costs a request."""
    from tests.support.uploadkit import weave_ref

    proj = f"rej/ref-{random.randrange(1 << 30):x}"
    recs = complete_records(300, proj)
    recs[42]["op_name"] = "weave:///not-a-valid-ref"
    file = tmp_path / "calls.jsonl"
    write_jsonl(file, recs)
    with weave_ref(tmp_path / "ref") as ref:
        r, summary = upload_json(file, ref.url, tmp_path)
        assert r.returncode == 1, r.stderr[-2000:]
        assert summary["uploaded"] == 299 and summary["rejected"] == 1, summary
        ids = stored_ids(ref.url, proj)
        assert len(ids) == len(set(ids)) == 299
    (meta,) = [x["_tracecli"] for x in lines(tmp_path / "tracecli-rejected.jsonl")]
    assert meta["status"] is None and meta["line"] == 43
    assert meta["reason"].startswith("op_name: a weave:/// reference must be"), meta["reason"]


def test_a_directory_does_not_bring_in_the_rejected_file(tmp_path, monkeypatch):
    from tracecli.journal.rejected import skip_rejected_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.jsonl").write_text("{}\n")
    rej = tmp_path / "tracecli-rejected.jsonl"
    files = ["./a.jsonl", "./tracecli-rejected.jsonl"]
    assert skip_rejected_file(["."], files, None) == files  # not there yet: nothing to skip
    rej.write_text("{}\n")
    assert skip_rejected_file(["."], files, None) == ["./a.jsonl"]
    assert skip_rejected_file([str(tmp_path)], files, rej) == ["./a.jsonl"]
    # named explicitly (fix and replay): kept
    assert skip_rejected_file(["tracecli-rejected.jsonl"], files[1:], None) == files[1:]
    assert skip_rejected_file([".", "tracecli-rejected.jsonl"], files, None) == files
    # another --rejected path: the default name is an ordinary input
    assert skip_rejected_file(["."], files, tmp_path / "other.jsonl") == files
    assert skip_rejected_file(["-"], ["-"], None) == ["-"]


@pytest.mark.slow
def test_uploading_the_working_directory_twice(tmp_path, serve):
    """`tracecli upload .` must not read back its own rejected file (it would grow each run)."""
    proj = f"rej/dir-{random.randrange(1 << 30):x}"
    recs = complete_records(20, proj)
    recs[4]["op_name"] = "o" * 200
    write_jsonl(tmp_path / "calls.jsonl", recs)
    for _ in range(3):
        r, summary = upload_json(".", serve.url, tmp_path)
        assert r.returncode == 1, r.stderr[-2000:]
        assert [f["path"] for f in summary["inputs"]] == ["calls.jsonl"], summary["inputs"]
        assert len(lines(tmp_path / "tracecli-rejected.jsonl")) == 1
