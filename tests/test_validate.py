"""validate_paths: the library function, its counts, odd inputs, and the worker pool."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.validate_kit import body, call, complete, end, new_id, start, write_jsonl
from tracecli.check.pairpack import unpack_pairs
from tracecli.diagnostics import UsageError
from tracecli.inputs.blocks import plan_ranges
from tracecli.upload import validate as v
from tracecli.upload import validate_blocks as blocks
from tracecli.upload.validate import Progress, ValidationReport, validate_paths


def codes(report: ValidationReport) -> list[tuple[int, str, str]]:
    return [(d.line, d.field, d.code) for d in report.diagnostics]


def test_counts_for_every_shape(tmp_path: Path) -> None:
    a, b, c, d, trace = new_id(), new_id(), new_id(), new_id(), new_id()
    write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            start(a, trace),
            end(a),
            {"mode": "start", "req": {"start": body(start(b, trace, a))}},
            {"mode": "end", "req": {"end": body(end(b))}},
            {"start": body(start(c, trace, a))},
            {"end": body(end(c))},
            complete(d, trace, a),
            {**complete(new_id(), trace, a), "type": "call"},
        ],
    )
    r = validate_paths([str(tmp_path / "mixed.jsonl")])
    assert (r.files, r.records, r.calls, r.errors, r.warnings) == (1, 8, 5, 0, 0)
    assert r.ok
    assert r.to_dict() == {
        "ok": True,
        "files": 1,
        "records": 8,
        "calls": 5,
        "errors": 0,
        "warnings": 0,
        "diagnostics": [],
    }


def test_bom_crlf_and_blank_lines_are_fine(tmp_path: Path) -> None:
    lines = [json.dumps(x).encode() for x in call()]
    data = b"\xef\xbb\xbf" + lines[0] + b"\r\n\r\n   \n" + lines[1] + b"\r\n\n"
    (tmp_path / "win.jsonl").write_bytes(data)
    r = validate_paths([str(tmp_path / "win.jsonl")])
    assert (r.records, r.calls, r.errors, r.warnings) == (2, 1, 0, 0)


def test_invalid_utf8_is_one_line_not_the_file(tmp_path: Path) -> None:
    good = [json.dumps(x).encode() for x in call() + call()]
    bad = json.dumps(start(new_id(), new_id(), inputs={"q": "XX"})).encode()
    bad = bad.replace(b"XX", b"caf\xe9")
    (tmp_path / "u.jsonl").write_bytes(b"\n".join([good[0], good[1], bad, good[2], good[3]]))
    r = validate_paths([str(tmp_path / "u.jsonl")])
    assert codes(r) == [(3, "", "json")]
    # the bad byte itself, not b"caf": a random uuid holds "caf" in ~1.5% of runs (a flake)
    at = bad.index(b"\xe9") + 1
    assert r.diagnostics[0].message == f"invalid UTF-8 at byte {at}"
    assert (r.records, r.calls) == (5, 2)  # the bad line is a record read, and refused


def test_binary_garbage_never_raises(tmp_path: Path) -> None:
    rng = random.Random(5)
    (tmp_path / "noise.jsonl").write_bytes(bytes(rng.getrandbits(8) for _ in range(20000)))
    r = validate_paths([str(tmp_path / "noise.jsonl")])
    assert not r.ok
    assert all(d.code == "json" for d in r.diagnostics)


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    recs = [x for _ in range(300) for x in call()]
    data = gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in recs))
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    r = validate_paths([str(tmp_path / "t.jsonl.gz")])
    assert r.errors == 1
    assert r.diagnostics[-1].code == "read-error"
    assert r.diagnostics[-1].message.startswith("file cannot be read from here on: ")
    assert r.records > 100


def test_yaml_python_tags_are_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f"- !!python/object/apply:os.system ['touch {marker}']\n")
    r = validate_paths([str(tmp_path / "evil.yaml")])
    assert not marker.exists()
    assert codes(r) == [(1, "", "yaml")]


def test_deeply_nested_values(tmp_path: Path) -> None:
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (tmp_path / "deep.yaml").write_text("- " + "[" * 20_000 + "]" * 20_000 + "\n")
    r = validate_paths([str(tmp_path / "deep.jsonl"), str(tmp_path / "deep.yaml")])
    assert [d.code for d in r.diagnostics] == ["json", "yaml"]


@pytest.mark.slow
def test_a_50_mb_line(tmp_path: Path) -> None:
    cid, trace = new_id(), new_id()
    huge = start(cid, trace, inputs={"document": "x" * (50 << 20)})
    write_jsonl(tmp_path / "big.jsonl", [huge, end(cid)])
    with (tmp_path / "big.jsonl").open("ab") as f:
        f.write(b'{"type": "start", "blob": "' + b"y" * (50 << 20) + b"\n")
    r = validate_paths([str(tmp_path / "big.jsonl")])
    assert (r.records, r.calls) == (3, 1)  # the cut line is a record read, and refused
    # no server takes a 50 MB call (32 MiB a request): said, but not a crash
    assert codes(r) == [(1, "(record)", "too-large"), (3, "", "json")]


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no input"):
        validate_paths([])
    with pytest.raises(UsageError, match=r"nope\.jsonl: no such file or directory"):
        validate_paths([str(tmp_path / "nope.jsonl")])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.md").write_text("hi")
    with pytest.raises(UsageError, match="no trace files"):
        validate_paths([str(tmp_path / "d")])


def test_max_errors_caps_errors_and_warnings_separately(tmp_path: Path) -> None:
    recs: list[Any] = [{"bad": i} for i in range(10)]
    recs += [end(new_id()) for _ in range(10)]
    write_jsonl(tmp_path / "many.jsonl", recs)
    r = validate_paths([str(tmp_path / "many.jsonl")], max_errors=3)
    assert (r.errors, r.warnings, r.unlisted) == (10, 10, 14)
    assert [d.severity.value for d in r.diagnostics] == ["error"] * 3 + ["warning"] * 3
    everything = validate_paths([str(tmp_path / "many.jsonl")], max_errors=0)
    assert len(everything.diagnostics) == 20


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "w.jsonl", [end(new_id()), {**end(new_id()), "colour": "red"}])
    lax = validate_paths([str(tmp_path / "w.jsonl")])
    assert (lax.ok, lax.errors, lax.warnings) == (True, 0, 3)
    strict = validate_paths([str(tmp_path / "w.jsonl")], strict=True)
    assert (strict.ok, strict.errors, strict.warnings) == (False, 3, 0)


def test_progress_reaches_the_end_of_each_file(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", call() * 1)
    b = write_jsonl(tmp_path / "b.jsonl.gz", call(), gz=True)
    c = tmp_path / "c.yaml"
    c.write_text(json.dumps(call()))
    seen: list[Progress] = []
    validate_paths([str(a), str(b), str(c)], on_progress=seen.append)
    last = {p.path: p for p in seen}
    for f in (a, b, c):
        assert last[str(f)].bytes_done == os.path.getsize(f) == last[str(f)].bytes_total
    assert last[str(c)].records == 6


def big_file(tmp_path: Path, calls: int, seed: int = 3) -> Path:
    """Interleaved traces with a sprinkling of every cross-record problem."""
    rng = random.Random(seed)
    out: list[Any] = []
    opened: list[tuple[str, str]] = []
    ids: list[str] = []
    for i in range(calls):
        trace = new_id()
        cid = new_id()
        ids.append(cid)
        parent = opened[-1][0] if opened and rng.random() < 0.5 else None
        if parent is not None:
            trace = opened[-1][1]
        roll = rng.random()
        if roll < 0.01:
            out.append(start(ids[rng.randrange(len(ids))], trace, parent))  # maybe duplicate
        elif roll < 0.02:
            out.append(end(new_id()))  # end without start
        elif roll < 0.03:
            out.append(start(cid, new_id(), parent))  # trace mismatch when parent is set
        elif roll < 0.04:
            out.append(complete(cid, trace, new_id()))  # missing parent
        elif roll < 0.05:
            out.append({"type": "start", "id": cid})  # refused
            out.append(end(cid))
        else:
            out.append(start(cid, trace, parent))
            opened.append((cid, trace))
        while opened and rng.random() < 0.45:
            done, _ = opened.pop(rng.randrange(len(opened)))
            out.append(end(done, ended_at="2026-03-02T09:14:04Z" if i % 97 == 0 else None))
    for done, _ in opened[: len(opened) // 2]:
        out.append(end(done))
    out = [{k: x for k, x in r.items() if x is not None or k != "ended_at"} for r in out]
    return write_jsonl(tmp_path / "big.jsonl", [_reshape(r, rng) for r in out])


def _reshape(rec: dict[str, Any], rng: random.Random) -> Any:
    """Some records in the other shapes: the checks must not care how a record is written."""
    kind = rec.get("type")
    if kind not in ("start", "end") or ("op_name" not in rec and kind == "start"):
        return rec
    roll = rng.random()
    if roll < 0.15:
        return {"mode": kind, "req": {kind: body(rec)}}
    if roll < 0.3:
        return {kind: body(rec)}
    return rec


@pytest.mark.slow
def test_worker_pool_gives_the_in_process_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(big_file(tmp_path, 3000))
    serial = validate_paths([path], jobs=0, max_errors=0)
    assert serial.errors and serial.warnings
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    for block in (500, 4096, 1 << 20):
        monkeypatch.setattr(v, "BLOCK_BYTES", block)
        pooled = validate_paths([path], jobs=2, max_errors=0)
        assert pooled.to_dict() == serial.to_dict(), block
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(Path(path).read_bytes()))
    from_gz = json.dumps(validate_paths([str(gz)], jobs=2, max_errors=0).to_dict())
    assert from_gz == json.dumps(serial.to_dict()).replace(path, str(gz))


MAIN_PID = os.getpid()
_real_check_range = blocks.check_range


def _fragile(p: str, offset: int, length: int) -> Any:
    """check_range, except that a worker dies on the second block (OOM killer, kill -9)."""
    if os.getpid() != MAIN_PID and offset > 0:
        os._exit(3)
    return _real_check_range(p, offset, length)


def test_a_worker_that_dies_is_replaced_by_in_process_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(big_file(tmp_path, 500))
    serial = validate_paths([path], jobs=0, max_errors=0)
    monkeypatch.setattr(blocks, "check_range", _fragile)
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(v, "BLOCK_BYTES", 2000)
    assert validate_paths([path], jobs=2, max_errors=0).to_dict() == serial.to_dict()


def test_halves_in_one_block_pair_up_only_when_nothing_else_shares_their_id() -> None:
    a, b, c, d, e, f, t = (new_id() for _ in range(7))
    recs = [
        start(a, t),  # 1: paired with 3
        start(b, t, a),  # 2: its end has a warning (slow path): stays apart
        end(a),  # 3
        {**end(b), "colour": "red"},  # 4
        start(c, t),  # 5: c occurs three times: kept apart
        end(c),  # 6
        end(c),  # 7
        end(d),  # 8: end before start: kept apart
        start(d, t),  # 9
        start(e, t),  # 10: end carries its own started_at: kept apart
        end(e, started_at="2026-03-02T09:14:05Z"),  # 11
        {"type": "start", "id": f},  # 12: refused
        start(f, t),  # 13: a second start of a refused id: apart
        end(f),  # 14
    ]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in recs)
    got = blocks.check_lines(data, "p.jsonl", True)
    assert (got.lines, got.records) == (14, 14)
    pairs = [(p.line, p.id, p.end_line, p.ended_first) for p in unpack_pairs(got.pairs)]
    assert pairs == [(1, a, 3, False)]
    kinds = [(x.line, x.kind) for x in got.entries if x.kind != "diag"]
    assert kinds == [
        (2, "start"),
        (4, "end"),
        (5, "start"),
        (6, "end"),
        (7, "end"),
        (8, "end"),
        (9, "start"),
        (10, "start"),
        (11, "end"),
        (12, "refused"),
        (13, "start"),
        (14, "end"),
    ]


def test_plan_ranges_cut_at_line_ends(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b"".join(b"x" * random.Random(i).randrange(1, 50) + b"\n" for i in range(500)))
    size = p.stat().st_size
    ranges = plan_ranges(str(p), size, 100)
    assert sum(n for _, n in ranges) == size
    data = p.read_bytes()
    for off, n in ranges:
        assert data[off + n - 1 : off + n] == b"\n"
    assert plan_ranges(str(p), 0, 100) == []


def reference(path: str) -> list[tuple[int, str, str, str, str]]:
    """What feeding the records one by one to parse_record and a CrossChecker says."""
    from tracecli.check.cross import CrossChecker
    from tracecli.check.records import parse_record
    from tracecli.diagnostics import Location

    checker = CrossChecker()
    found: list[Any] = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            loc = Location(path, n)
            value = json.loads(raw)
            parsed = parse_record(loc, value)
            found += parsed.diagnostics
            if parsed.record is not None:
                found += checker.feed(parsed.record)
            else:
                checker.note_refused(loc, value)
            found += checker.drain()
    found += checker.finish()
    return sorted((d.line, d.field, d.code, d.severity.value, d.message) for d in found)


def test_bulk_pairs_with_parents_anywhere_get_the_one_by_one_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pairs taken in bulk (all their ids new) whose parents were read in an earlier
    block, paired or still open, of their trace or of another, or not read yet, or
    never: the same diagnostics as feeding the records one by one, block by block in
    one process or through a worker."""
    p, o, q, m, late, t, t2 = (new_id() for _ in range(7))
    kids = [new_id() for _ in range(6)]
    filler = [r for _ in range(6) for r in call()]
    recs = [
        start(p, t),
        end(p),  # a parent read whole
        start(o, t),  # a parent still open
        start(q, t2),  # an open parent of another trace
        *filler,
        start(kids[0], t, p),
        end(kids[0]),
        start(kids[1], t, o),
        end(kids[1]),
        *filler,
        start(kids[2], t, q),  # another trace than its open parent's
        end(kids[2]),
        start(kids[3], t2, p),  # another trace than its paired parent's
        end(kids[3]),
        *filler,
        start(kids[4], t, late),  # its parent comes later
        end(kids[4]),
        start(kids[5], t, m),  # its parent never comes
        end(kids[5]),
        *call(),
        start(late, t),
        end(late),
        end(o),
        end(q),
    ]
    runs = ((0, 1 << 20), (0, 1500), (0, 4000), (1, 3000))
    codes = {"trace-mismatch", "missing-parent"}
    assert_blocks_answer(tmp_path / "parents.jsonl", recs, codes, monkeypatch, runs)


def assert_blocks_answer(
    path: Path,
    recs: list[dict[str, Any]],
    codes: set[str],
    monkeypatch: pytest.MonkeyPatch,
    runs: tuple[tuple[int, int], ...],
) -> None:
    """`recs` written to `path` as JSONL: fed one by one they say at least `codes`, and
    `validate` with each (worker count, block size) of `runs` says the same."""
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in recs))
    want = reference(str(path))
    assert {w[2] for w in want} >= codes
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    for jobs, block in runs:
        monkeypatch.setattr(v, "BLOCK_BYTES", block)
        got = validate_paths([str(path)], jobs=jobs, max_errors=0)
        assert (
            sorted((d.line, d.field, d.code, d.severity.value, d.message) for d in got.diagnostics)
            == want
        ), (jobs, block)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7])
def test_same_answer_as_feeding_records_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    path = str(big_file(tmp_path, 2000, seed))
    want = reference(path)
    assert want, "the scenario must have problems"
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    for jobs, block in ((0, 1 << 20), (1, 3000), (2, 3000), (2, 1 << 16)):
        monkeypatch.setattr(v, "BLOCK_BYTES", block)
        got = validate_paths([path], jobs=jobs, max_errors=0)
        assert (
            sorted((d.line, d.field, d.code, d.severity.value, d.message) for d in got.diagnostics)
            == want
        ), (jobs, block)


def test_same_id_in_two_projects_is_a_duplicate_that_says_why(tmp_path: Path) -> None:
    """The same traces written for two projects (gen_traces' default seed does that).

    The hosted server keys calls by (project, id), but weave's SQLite server by id alone
    and `upload --project` sends every file to one project: an id must be unique across
    the inputs, and the message says so, as validate and upload agree on it."""
    cid, trace = new_id(), new_id()
    a = [{**r, "project_id": "acme/one"} for r in call(cid, trace)]
    b = [{**r, "project_id": "acme/two"} for r in call(cid, trace)]
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    r = validate_paths([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    assert codes(r) == [(1, "id", "duplicate-id"), (2, "id", "duplicate-id")]
    assert r.diagnostics[0].path == str(tmp_path / "b.jsonl")
    assert r.diagnostics[0].message == (
        f"call id {cid} is already used by the call at {tmp_path / 'a.jsonl'}:1; call ids "
        "must be unique across all the inputs, even between projects (weave's SQLite "
        "server keys calls by id alone)"
    )
    assert r.diagnostics[1].message == (
        f"call id {cid} already has an end (at {tmp_path / 'a.jsonl'}:1)"
    )


def test_references_are_checked_on_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad weave:/// string is found whether its record takes the fast path or not,
    in the serial reader, in blocks checked by the pool and in YAML."""
    recs = [x for _ in range(3000) for x in call()]
    recs[4001] = {**recs[4001], "output": {"doc": "weave:///acme/agents"}}
    recs[4003] = {**recs[4003], "output": {"doc": "weave:///acme/agents/object/d:1"}}
    write_jsonl(tmp_path / "r.jsonl", recs)
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(v, "BLOCK_BYTES", 1 << 16)
    for jobs in (0, 1, 2):
        r = validate_paths([str(tmp_path / "r.jsonl")], jobs=jobs)
        assert codes(r) == [(4002, "output.doc", "ref")], jobs
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recs[4000:4004]))
    r = validate_paths([str(tmp_path / "r.yaml")])
    assert [(d.field, d.code) for d in r.diagnostics] == [("output.doc", "ref")]


def test_a_reference_with_an_escaped_letter_is_checked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`"\\u0077eave:///acme/agents"` is the same string as `"weave:///acme/agents"` to the
    server, so the block search (and the line's own) must not take it for a plain line."""
    recs = [x for _ in range(3000) for x in call()]
    recs[4001] = {**recs[4001], "output": {"doc": "XX1"}}
    recs[4003] = {**recs[4003], "output": {"doc": "XX2"}}
    text = "".join(json.dumps(r) + "\n" for r in recs)
    text = text.replace('"XX1"', '"\\u0077eave:///acme/agents"')
    text = text.replace('"XX2"', '"w\\u0065ave:///acme/agents/object/d:1"')
    (tmp_path / "r.jsonl").write_text(text)
    monkeypatch.setattr(v, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(v, "BLOCK_BYTES", 1 << 16)
    for jobs in (0, 1, 2):
        r = validate_paths([str(tmp_path / "r.jsonl")], jobs=jobs)
        assert codes(r) == [(4002, "output.doc", "ref")], jobs


def test_a_record_over_the_server_request_limit_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call whose request alone is over the server's limit would be a 413 on upload
    whatever the chunking (the limit scaled down here: 32 MiB in real life)."""
    monkeypatch.setattr(blocks, "SERVER_MAX_BYTES", 4096)
    monkeypatch.setattr(blocks, "_NEAR_LIMIT", 1024)
    big = start(new_id(), new_id(), inputs={"q": "x" * 5000})
    near = start(new_id(), new_id(), inputs={"q": "x" * 1500})
    recs = [big, end(big["id"]), near, end(near["id"])]
    write_jsonl(tmp_path / "big.jsonl", recs)
    r = validate_paths([str(tmp_path / "big.jsonl")], jobs=0)
    assert codes(r) == [(1, "(record)", "too-large")]
    assert r.diagnostics[0].message.endswith(
        " MiB as JSON; a Weave server refuses a request over 0 MiB, and one call cannot be split"
    )
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(recs))
    r = validate_paths([str(tmp_path / "big.yaml")])
    assert codes(r) == [(1, "(record)", "too-large")]


def test_pipes_and_gzip_by_content(tmp_path: Path) -> None:
    """`validate <(zcat f.gz)` names a pipe whose size is 0: it must be read as a stream,
    not skipped; gzip data is known by its magic bytes whatever the file is called."""
    import subprocess
    import sys
    import threading

    recs = [x for _ in range(50) for x in call()]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in recs)
    fifo = tmp_path / "pipe"
    for payload in (data, gzip.compress(data)):
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(payload,))
        writer.start()
        r = validate_paths([str(fifo)])
        writer.join()
        fifo.unlink()
        assert (r.records, r.calls, r.errors, r.warnings) == (100, 50, 0, 0)
    (tmp_path / "named.jsonl").write_bytes(gzip.compress(data))
    r = validate_paths([str(tmp_path / "named.jsonl")])
    assert (r.records, r.calls, r.errors) == (100, 50, 0)
    # gzip piped to stdin (a real stdin: CliRunner's has no peek)
    out = subprocess.run(
        [sys.executable, "-m", "tracecli", "validate", "-"],
        input=gzip.compress(data),
        capture_output=True,
        timeout=120,
    )
    assert (out.returncode, out.stdout) == (
        0,
        b"1 file, 100 records, 50 calls: 0 errors, 0 warnings\n",
    )


def test_a_block_outcome_pickles_with_its_entries_named() -> None:
    """A worker sends its block's entries as plain rows; they come back as the named
    tuples they were, equal, in order."""
    import pickle

    from tracecli.check.entries import diag_entry, refused_entry, time_entry
    from tracecli.diagnostics import Severity
    from tracecli.schema.fastcheck import Facts

    a = new_id()
    entries = [
        Facts(1, "start", a, "t", None, 1.5, None),
        diag_entry(2, "op_name", "missing", Severity.ERROR, "is required"),
        refused_entry(2, a),
        time_entry(3, 0, "2026-03-02T09:14:07Z", "2026-03-02T09:14:06Z"),
    ]
    back = pickle.loads(pickle.dumps(blocks.Checked(3, 3, entries, None)))
    assert (back.lines, back.records, back.entries, back.pairs) == (3, 3, entries, None)
    assert [type(e) for e in back.entries] == [type(e) for e in entries]


def test_packed_pairs_round_trip() -> None:
    from tracecli.check.pairpack import NO_PARENT, pack_halves
    from tracecli.schema.fastcheck import Facts

    a, b, t = new_id(), "0af7651916cd43dd", "0af7651916cd43dd8448eb211c80319c"
    pairs = [
        (1, a, t, None, "2026-03-02T09:14:05Z", "2026-03-02T09:14:06Z", 2, False),
        (3, b, t, a, "2026-03-02T09:14:07Z", "2026-03-02T09:14:06Z", 9, True),
    ]
    halves = [
        (Facts(ln, "start", i, tr, p, st, None), en, e, bad)
        for ln, i, tr, p, st, en, e, bad in pairs
    ]
    packed = pack_halves(halves)
    assert packed is not None
    assert unpack_pairs(packed) == pairs
    assert list(packed[2]) == [hash(a), hash(b)]
    assert list(packed[4]) == [NO_PARENT, hash(a)]
    assert packed[10] == [(1, "2026-03-02T09:14:07Z", "2026-03-02T09:14:06Z")]
    assert pack_halves([]) is None and unpack_pairs(None) == []


def test_a_utf16_file_is_one_error_that_says_how_to_convert_it(tmp_path: Path) -> None:
    """What Windows PowerShell's `>` writes: one line for the file, not one per line."""
    text = "".join(json.dumps(r) + "\n" for r in call())
    (tmp_path / "ps.jsonl").write_bytes(text.encode("utf-16"))
    r = validate_paths([str(tmp_path / "ps.jsonl")])
    assert [d.one_line() for d in r.diagnostics] == [
        f"{tmp_path / 'ps.jsonl'}:1: error: (file): the file is UTF-16 (it starts with a "
        "UTF-16 byte order mark); tracecli reads UTF-8: convert it, e.g. iconv -f UTF-16 "
        "-t UTF-8"
    ]
    assert (r.files, r.records) == (1, 0)


def test_pairs_of_a_block_with_a_known_id_get_the_one_by_one_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose pairs cannot be taken in bulk (an id seen in an earlier block) goes
    through the exact path pair by pair: duplicates, trace mismatches with an open parent,
    parents read later and ends before starts come out as when fed one by one."""
    a, x, c, d, z, w, t, t2 = (new_id() for _ in range(8))
    filler = [r for _ in range(6) for r in call()]
    recs = [
        start(a, t),  # open until the end: a parent of calls in later blocks
        complete(x, t),  # x again below, in a pair
        *filler,
        start(x, t),  # a duplicate id, paired in its block: the block goes one by one
        end(x),
        start(c, t2, a),  # its open parent has another trace
        end(c),
        start(d, t, z),  # its parent comes later
        end(d),
        start(w, t),  # ends before it starts
        end(w, ended_at="2026-03-02T09:14:04Z"),
        *call(),
        start(z, t),
        end(z),
        end(a),
    ]
    codes = {"duplicate-id", "trace-mismatch"}
    runs = ((0, 1 << 20), (0, 2000), (1, 3000))
    assert_blocks_answer(tmp_path / "known.jsonl", recs, codes, monkeypatch, runs)
