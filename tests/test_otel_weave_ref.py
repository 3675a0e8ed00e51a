"""`tracecli convert --to weave` + `upload` stores what weave's own `/otel/v1/traces` stores.

Two reference servers (weave's SqliteTraceServer, run in UTC as weave's span times need):
server A gets each OTLP line posted to its OTel route, server B gets tracecli's converted
calls through `tracecli upload`; every call is read back from both and compared field by
field. The one difference allowed is how the times are written: weave's SQLite server keeps
OTel span times naive (`datetime.fromtimestamp`), tracecli writes UTC with `Z` (the same
instant; docs/opentelemetry.md says why).
"""

from __future__ import annotations

import base64
import gzip
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import otel_kit
from tests.support.otel_kit import (
    differences,
    post_otel,
    read_lines,
    resource_projects,
    same_calls_stored,
)
from tests.support.servers import SHARED, ServerHandle
from tests.support.uploadkit import read_back, run_cli
from tracecli.otel.convert import convert_otlp

pytestmark = pytest.mark.slow  # two weave-ref servers: out of the fast loop

FIXTURES = Path(__file__).parent / "otel_fixtures"
AGENT_FILES = sorted(FIXTURES.glob("agent-*.jsonl.gz"))
MAKE_OTLP = SHARED / "tools" / "otel"
OTEL_VENV = Path.home() / ".cache" / "tracecli-otel" / "venv"  # resolved at import: real home

refs = otel_kit.refs  # the fixture: two weave-ref servers


def convert_and_upload(tmp_path: Path, src: Path, project: str, server: ServerHandle) -> Path:
    out = tmp_path / (src.name.split(".")[0] + ".weave.jsonl")
    conv = run_cli("convert", str(src), "--to", "weave", "-p", project, "-o", str(out))
    assert conv.returncode in (0, 1), conv.stderr
    check = run_cli("validate", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    up = run_cli("upload", str(out), "--server", server.url, "--api-key", "x", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    return out


def compare(src: Path, project: str, refs: tuple[ServerHandle, ServerHandle],
            tmp_path: Path) -> tuple[int, int]:  # fmt: skip
    """Post, convert, upload, read back and compare; (calls compared, spans weave rejected)."""
    a, b = refs
    lines = read_lines(src)
    rejected = post_otel(a, lines, project)
    out = convert_and_upload(tmp_path, src, project, b)
    assert len(out.read_bytes().splitlines()) + rejected == sum(
        len(ss["spans"]) for line in lines for rs in orjson.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"])  # fmt: skip
    compared = same_calls_stored(a.url, b.url, {project} | resource_projects(lines))
    return compared, rejected


@pytest.mark.parametrize("src", AGENT_FILES, ids=lambda p: p.name)
def test_agent_traces_match_weave(src: Path, refs: Any, tmp_path: Path) -> None:
    compared, rejected = compare(src, f"acme/{src.name.split('.')[0]}", refs, tmp_path)
    assert compared == 19 and rejected == 0


def test_conventions_match_weave(refs: Any, tmp_path: Path) -> None:
    compared, rejected = compare(FIXTURES / "conventions.jsonl", "acme/conventions", refs,
                                 tmp_path)  # fmt: skip
    assert rejected == 3  # `a` with `a.b` (twice) and an event's `x` with `x.y`
    assert compared == 32 - 3


def test_wb_run_id_matches_weave(refs: Any, tmp_path: Path) -> None:
    compare(FIXTURES / "wb_run_id.jsonl", "acme/otel-run", refs, tmp_path)


def test_generator_still_writes_the_committed_bytes(tmp_path: Path) -> None:
    """The committed fixtures are what ../shared/tools/otel/make_otlp.py writes today."""
    script = MAKE_OTLP / "make_otlp.py"
    python = OTEL_VENV / "bin" / "python"
    if not script.exists() or not python.exists():
        pytest.skip(f"needs {script} and its venv {OTEL_VENV} (../shared/tools/otel/setup.sh)")
    out = tmp_path / "agent-seed1.jsonl"
    port = str(18431)
    res = subprocess.run([str(python), str(script), str(out), "--runs", "3", "--seed", "1",
                          "--port", port], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    # the fake server's port shows in `server.port`; another is taken when 18431 is busy
    port_attr = re.compile(rb'("server\.port","value":\{"intValue":")\d+"')
    committed = gzip.decompress((FIXTURES / "agent-seed1.jsonl.gz").read_bytes())
    for_both = rb'\g<1>0"'
    assert port_attr.sub(for_both, out.read_bytes()) == port_attr.sub(for_both, committed)


# ----------------------------------------------------------------------- random spans
# Attribute keys weave's mapping reads (and a few it does not), values of every OTel type,
# JSON-looking strings: each span on its own line, so a span weave fails on fails alone.
FUZZ_KEYS = [
    "ai.prompt", "gen_ai.prompt", "input.value", "gen_ai.input.messages", "input", "inputs",
    "gen_ai.completion", "output.value", "gen_ai.output.messages", "output", "outputs",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
    "llm.token_count.completion", "llm.token_count.total", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.system", "openinference.span.kind", "gen_ai.response.model", "gen_ai.request.model",
    "gen_ai.request", "llm.invocation_parameters", "gen_ai.response.finish_reasons",
    "wandb.display_name", "gen_ai.conversation.id", "wandb.thread_id", "wandb.attributes",
    "wandb.wb_run_id", "wandb.wb_run_step", "wandb.wb_run_step_end", "wandb.is_turn",
    "langfuse.startTime", "langfuse.endTime", "gen_ai.prompt.0.content", "gen_ai.prompt.1.role",
    "gen_ai.completion.0.content", "input.0", "output.1", "x", "x.y", "z.0", "z.1",
]  # fmt: skip
FUZZ_TEXT = ["", "hi", "a.b", "0", "m1", "run-1", "e/p", '{"a": 1}', "[1, 2]", "[bad", "{}",
             '{"0": "x", "1": "y"}', '{"m.n": 1}', "[NaN]", '{"model": "m"}',
             "2026-03-02T10:00:00.5"]  # fmt: skip


def fuzz_value(r: random.Random, depth: int = 0) -> dict[str, Any]:
    kind = r.randrange(9 if depth < 2 else 7)
    if kind <= 1:
        return {"stringValue": r.choice(FUZZ_TEXT)}
    if kind == 2:
        return {"intValue": str(r.choice([0, 1, -3, 7, 2**40]))}
    if kind == 3:
        return {"doubleValue": r.choice([0.0, 1.5, "NaN", "Infinity", -2.0, 3.0])}
    if kind == 4:
        return {"boolValue": r.random() < 0.5}
    if kind == 5:
        return {"bytesValue": base64.b64encode(r.randbytes(3)).decode()}
    if kind == 6:
        return {"stringValue": r.choice(["text", "m1", "run-7"])}
    if kind == 7:
        return {"arrayValue": {"values": [fuzz_value(r, depth + 1) for _ in range(r.randrange(3))]}}
    pairs = [{"key": r.choice(["a", "b.c", "0", "1", "model"]), "value": fuzz_value(r, depth + 1)}
             for _ in range(r.randrange(3))]  # fmt: skip
    return {"kvlistValue": {"values": pairs}}


def fuzz_lines(seed: int, count: int) -> list[bytes]:
    r = random.Random(seed)
    base = 0xE000000000000000 + seed * 0x100000
    lines = []
    for n in range(count):
        start = 1_772_445_245_000_000_000 + r.randrange(10**12)
        span: dict[str, Any] = {
            "traceId": f"{seed * 0x100000 + n // 5 + 1:032x}", "spanId": f"{base + n:016x}",
            "name": r.choice(["op", "chat m", "x" * r.randrange(120, 140)]),
            "kind": r.randrange(6), "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + r.randrange(10**10)),
            "attributes": [{"key": r.choice(FUZZ_KEYS), "value": fuzz_value(r)}
                           for _ in range(r.randrange(7))],
            "status": r.choice([{}, {"code": 2, "message": "bad"}, {"code": 1}, {"code": 2}]),
        }  # fmt: skip
        if n % 5:
            span["parentSpanId"] = f"{base + n - n % 5:016x}"
        if r.random() < 0.2:
            attr = {"key": r.choice(FUZZ_KEYS), "value": fuzz_value(r)}
            span["events"] = [{"timeUnixNano": str(start + 5), "name": "e", "attributes": [attr]}]
        rs = {"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}
        lines.append(orjson.dumps({"resourceSpans": [rs]}))
    return lines


def span_id_of(line: bytes) -> str:
    return str(orjson.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"])


# tracecli refuses what its call checks refuse, though weave's SQLite server stores it
TRACECLI_STRICTER = ("tracecli's call checks", "wb_run_step_end")


@pytest.mark.parametrize("seed", [1, 2])
def test_random_spans_match_weave(seed: int, refs: Any, tmp_path: Path) -> None:
    """Every span weave stores completely, tracecli converts to the same call; every span
    weave fails on or rejects, tracecli leaves out with an error."""
    a, b = refs
    project = f"acme/fuzz{seed}"
    lines = fuzz_lines(seed, 150)
    stored = set()
    with httpx.Client(base_url=a.url, timeout=60, trust_env=False) as c:
        for line in lines:
            headers = {"content-type": "application/json", "project_id": project}
            r = c.post("/otel/v1/traces", content=line, headers=headers)
            if r.status_code == 200 and not r.json().get("partialSuccess"):
                stored.add(span_id_of(line))
    src = tmp_path / "fuzz.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out: list[bytes] = []
    report = convert_otlp([str(src)], out.append, project=project)
    calls = [orjson.loads(x) for x in out]
    ours = {c["id"] for c in calls}
    assert ours <= stored  # nothing weave fails on is converted
    for d in report.diagnostics:  # what weave stores and tracecli does not: on purpose
        sid = span_id_of(lines[d.line - 1])
        if d.is_error and sid in stored:
            assert any(w in d.message for w in TRACECLI_STRICTER), d.message
            stored.discard(sid)
    assert ours == stored and 0 < len(ours) < len(lines)
    r = httpx.post(f"{b.url}/v2/{project}/calls/complete", json={"batch": calls}, timeout=60)
    assert r.status_code == 200, r.text
    weave = {c["id"]: c for c in read_back(a.url, project) if c["id"] in ours}
    got = {c["id"]: c for c in read_back(b.url, project)}
    assert weave.keys() == got.keys()
    problems = {i: d for i in weave if (d := differences(weave[i], got[i]))}
    assert not problems, problems
