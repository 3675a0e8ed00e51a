"""The real weave 0.54 SDK against `tracecli serve` and against weave's own server.

tests/support/sdk_program.py (nested ops, an exception, a generator op, attributes, usage,
thread and turn ids, set_wandb_run_context, a 2**64 input, a published Dataset with an
Evaluation over it, feedback on a call, deleting a call, queries) runs once against each
server, each fresh; then every SDK operation that worked on weave's server must work on
serve, and every call must read back the same from both, field by field, except for what
must differ (IGNORED says what and why).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ServerHandle, start_all, start_serve, start_weave_ref

pytestmark = [pytest.mark.weave_ref, pytest.mark.slow]

PROGRAM = Path(__file__).parent / "support" / "sdk_program.py"
PROJECT = "conformance/sdk"
# Resolved at import: the autouse fixture points HOME at a temporary directory later.
BENCH_HOME = Path(
    os.environ.get("BENCH_HOME")
    or Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "tracecli-bench"
)
SDK_PYTHON = BENCH_HOME / "weave-sdk" / "bin" / "python"

# What must differ between two runs of the same program on two servers, and why:
IGNORED = {
    # each server stamps its own user on every write (weave-ref: "refserver-user")
    "wb_user_id": "the server's authenticated user",
    # the wall clock of each run
    "started_at": "when the run happened (only whether it is set is compared)",
    "ended_at": "when the run happened (only whether it is set is compared)",
    "summary.weave.latency_ms": "how long the op took in that run",
    # the SDK reads the W&B run context for an end when its background thread sends it, so
    # which call (the one inside set_wandb_run_context, or the next) carries step_end 4
    # varies between two runs of the same program; the start's wb_run_step is compared
    "wb_run_step_end": "which call the SDK stamps it on depends on its thread's timing",
    "output.model_latency / model_latency.mean": "how long the model took in that run",
    # ids the SDK makes up per run; compared as the structure they form (parent, trace)
    "id / trace_id / parent_id / turn_id": "uuid7s of that run: renamed call0, call1, ...",
    # weave-ref digests objects after turning refs into its internal form (a base64 project
    # id of its own), so an object's digest, and a ref naming it, differ on any other server
    "the :digest of a weave:/// object or op ref": "weave-ref digests its internal ref form",
}
# SDK operations whose value may differ (not whether they worked), and why:
VALUE_DIFFERS = {
    "publish dataset": "its digest (see IGNORED)",
    "evaluation": "model_latency is the run's timing",
}
# SDK operations that fail on weave-ref for a reason of its own and must work on serve:
WEAVE_REF_FAILS = {
    # weave 0.52.42's FeedbackCreateReq forbids the keys the 0.54 SDK adds to every feedback
    # item (span_agent_name, ...): weave-ref answers 422 and the SDK drops the feedback. The
    # hosted server takes them, and so does serve; /feedback/* itself is compared over HTTP
    # in tests/test_serve_conformance.py.
    "feedback read": [
        ["correctness", '{"value": true}'],
        ["wandb.note.1", '{"note": "looks right"}'],
    ],
    "feedback purge": 1,
}


def _sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        pytest.skip(
            f"the weave SDK venv is not at {SDK_PYTHON}: build it with "
            "bash ../shared/tools/bench/setup.sh (or set BENCH_HOME)"
        )
    return SDK_PYTHON


def _run_program(python: Path, server: ServerHandle, home: Path) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "WF_", "WEAVE_")) and k != "PYTHONPATH"
    }
    env["HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(python), str(PROGRAM), server.url, PROJECT],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=home,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _read_calls(server: ServerHandle) -> list[dict[str, Any]]:
    with server.client() as client:
        r = client.post("/calls/stream_query", json={"project_id": PROJECT})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


class Run:
    def __init__(self, report: dict[str, Any], calls: list[dict[str, Any]]) -> None:
        self.report, self.calls = report, calls


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The program against each server, both at once: a server's start and an SDK run are
    mostly imports and waits on the SDK's batch timers, so the two overlap on two cores."""
    python = _sdk_python()
    base = tmp_path_factory.mktemp("sdk")
    servers = dict(
        zip(
            ("weave-ref", "serve"),
            start_all(
                partial(start_weave_ref, base / "weave-ref"), partial(start_serve, base / "serve")
            ),
            strict=True,
        )
    )
    try:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            reports = {
                kind: pool.submit(_run_program, python, server, base / f"home-{kind}")
                for kind, server in servers.items()
            }
        return {
            kind: Run(reports[kind].result(), _read_calls(server))
            for kind, server in servers.items()
        }
    finally:
        for server in servers.values():
            server.stop()


# ---- normalising what must differ -------------------------------------------------------

_REF = re.compile(r"(weave:///[^/\s\"]+/[^/\s\"]+/(?:object|op|table)/[^:/\s\"]+):[A-Za-z0-9]+")


def _sort_key(call: dict[str, Any]) -> str:
    """What a call is, without the ids and times of its run: its op and inputs."""
    return json.dumps([_REF.sub(r"\1", call["op_name"]), _scrub(call["inputs"], {})])


def _scrub(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: "<run timing>" if k == "model_latency" else _scrub(v, names)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, names) for v in value]
    if isinstance(value, str):
        value = _REF.sub(r"\1:<digest>", value)
        return names.get(value, value)
    return value


def normalise(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls in a run-independent order, ids renamed by that order, IGNORED fields blanked."""
    order = sorted(range(len(calls)), key=lambda i: (_sort_key(calls[i]), i))
    names: dict[str, str] = {}
    for n, i in enumerate(order):
        names[calls[i]["id"]] = f"call{n}"
    for n, i in enumerate(order):
        names.setdefault(calls[i]["trace_id"], f"trace-of-call{n}")
    out = []
    for i in order:
        c = dict(calls[i])
        c["wb_user_id"] = "<server user>"
        c["started_at"] = c["started_at"] is not None
        c["ended_at"] = c["ended_at"] is not None
        c["wb_run_step_end"] = "<SDK timing>"
        weave = c["summary"].get("weave") or {}
        if "latency_ms" in weave:
            weave["latency_ms"] = "<run timing>"
        out.append(_scrub(c, names))
    return out


# ---- the tests ----------------------------------------------------------------------------


def test_every_sdk_operation_that_works_on_weave_ref_works_on_serve(runs: dict[str, Run]) -> None:
    ref, serve = runs["weave-ref"].report, runs["serve"].report
    assert set(ref) == set(serve)
    for name, outcome in ref.items():
        mine = serve[name]
        if name in WEAVE_REF_FAILS:
            assert mine == {"ok": True, "value": WEAVE_REF_FAILS[name]}, name
        elif name in VALUE_DIFFERS:
            assert mine["ok"] == outcome["ok"], (name, outcome, mine)
        else:
            assert mine == outcome, name
    # the operations the issue names, as they should come out
    assert serve["len(dataset.rows)"] == {"ok": True, "value": 3}
    assert serve["2**64 input"] == {"ok": True, "value": str(2**64)}
    assert serve["deleted call is gone"] == {"ok": True, "value": 0}
    assert serve["get_calls query on a number as a string"] == {"ok": True, "value": 1}
    assert serve["exception"] == {"ok": False, "error": "ValueError: boom"}


def test_every_call_reads_back_the_same_from_both(runs: dict[str, Run]) -> None:
    ref = normalise(runs["weave-ref"].calls)
    serve = normalise(runs["serve"].calls)
    assert len(serve) == len(ref) > 20
    diffs = [
        f"{a['id']} ({a['op_name']}) {key}: weave-ref {a.get(key)!r} serve {b.get(key)!r}"
        for a, b in zip(ref, serve, strict=True)
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    assert diffs == []


def test_what_the_sdk_wrote_is_there(runs: dict[str, Run]) -> None:
    """The fields the issue found lost or changed, present on both servers."""
    for kind, run in runs.items():
        by_op: dict[str, list[dict[str, Any]]] = {}
        for call in run.calls:
            by_op.setdefault(_REF.sub(r"\1", call["op_name"]).rsplit("/", 1)[-1], []).append(call)
        wide = [c for c in by_op["identity"] if c["inputs"].get("value") == 2**64]
        assert wide and type(wide[0]["inputs"]["value"]) is int, kind
        run_calls = [c for c in run.calls if c["wb_run_id"]]
        assert [(c["wb_run_id"], c["wb_run_step"]) for c in run_calls] == [
            (f"{PROJECT}/run-123", 4)
        ], kind
        turns = by_op["chat_turn"]
        assert {c["thread_id"] for c in turns} == {"thread-conformance"}, kind
        assert all(c["turn_id"] == c["id"] for c in turns), kind
        (llm,) = [c for c in by_op["llm"] if c["parent_id"] is None]
        assert llm["summary"]["usage"]["gpt-4o-mini"]["total_tokens"] == 17, kind
        (failed,) = by_op["fails"]
        assert failed["exception"] and failed["summary"]["weave"]["status"] == "error", kind
        attributed = [c for c in run.calls if c["attributes"].get("env") == "test"]
        assert len(attributed) == 2, kind  # outer and its add
