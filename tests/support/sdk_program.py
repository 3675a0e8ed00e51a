"""One weave SDK program, run by the real weave SDK's interpreter against a trace server.

tests/test_serve_sdk.py runs it twice, against `tracecli serve` and against weave's own
server, and compares what each stored. It prints one JSON object: each SDK operation by name,
`{"ok": true, "value": ...}` or `{"ok": false, "error": "..."}`; the calls are read back by
the test itself. Offline: W&B's GraphQL (WANDB_BASE_URL) is answered by the server too.

    python sdk_program.py URL ENTITY/PROJECT
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

URL, PROJECT = sys.argv[1], sys.argv[2]
os.environ.update(
    {
        "WF_TRACE_SERVER_URL": URL,
        "WANDB_BASE_URL": URL,
        "WANDB_API_KEY": "test-key-not-a-secret",
        "WEAVE_PRINT_CALL_LINK": "false",
        "WEAVE_USE_SERVER_CACHE": "false",
        "WEAVE_IMPLICITLY_PATCH_INTEGRATIONS": "false",
        "WEAVE_CAPTURE_SYSTEM_INFO": "false",
        "WEAVE_ENABLE_DISK_FALLBACK": "false",
        "WANDB_ERROR_REPORTING": "false",
        "WEAVE_RETRY_MAX_ATTEMPTS": "2",
        "WEAVE_DISABLED": "false",
    }
)

import weave  # noqa: E402 - after the environment it reads

report: dict[str, Any] = {}


def step(name: str, fn: Callable[[], Any]) -> Any:
    """Run one SDK operation, noting whether it worked (and what it returned, as JSON)."""
    try:
        value = fn()
    except Exception as exc:  # the report says what failed
        report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        return None
    try:
        json.dumps(value)
        shown = value
    except (TypeError, ValueError):
        shown = repr(type(value).__name__)
    report[name] = {"ok": True, "value": shown}
    return value


@weave.op
def add(a: int, b: int) -> int:
    return a + b


@weave.op
def outer(x: int) -> int:
    return add(x, 1) * 2


@weave.op
def fails(msg: str) -> None:
    raise ValueError(msg)


@weave.op
def count_up(n: int) -> Iterator[int]:
    yield from range(n)


@weave.op
def identity(value: Any) -> Any:
    return value


@weave.op
def llm(prompt: str) -> dict[str, Any]:
    """A chat completion as an integration reports it: its usage lands in summary.usage."""
    return {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": prompt.upper()}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


@weave.op
def chat_turn(text: str) -> str:
    return llm(text)["choices"][0]["message"]["content"]


@weave.op
def model(question: str) -> str:
    return question.upper()


@weave.op
def exact(expected: str, output: str) -> dict[str, bool]:
    return {"correct": expected == output}


def main() -> None:
    client = weave.init(PROJECT)
    step("nested ops", lambda: outer(3))
    step("exception", lambda: fails("boom"))
    step("generator op", lambda: list(count_up(3)))

    def with_attributes() -> int:
        with weave.attributes({"env": "test", "tier": {"level": 2}}):
            return outer(10)

    step("attributes", with_attributes)
    step("usage", lambda: llm("hello")["usage"]["total_tokens"])

    def threads() -> list[str]:
        with weave.thread("thread-conformance"):
            return [chat_turn("first"), chat_turn("second")]

    step("thread and turn ids", threads)

    def run_context() -> int:
        client.set_wandb_run_context(run_id="run-123", step=4)
        try:
            return add(1, 2)
        finally:
            client.clear_wandb_run_context()

    step("set_wandb_run_context", run_context)
    step("2**64 input", lambda: str(identity(2**64)))
    step("nested input", lambda: identity({"a": [1, {"b": None, "c": 1.5}], "s": "é✓"}))

    dataset = weave.Dataset(
        name="conformance-ds",
        rows=[
            {"question": "a", "expected": "A"},
            {"question": "b", "expected": "x"},
            {"question": "c", "expected": "C"},
        ],
    )
    step("publish dataset", lambda: str(weave.publish(dataset).uri().split(":")[-1]))
    got = step("get dataset", lambda: weave.ref("conformance-ds:latest").get())
    step("len(dataset.rows)", lambda: len(got.rows))
    step("dataset rows", lambda: [dict(r) for r in got.rows])
    evaluation = weave.Evaluation(
        name="conformance-eval",
        evaluation_name="conformance-run",  # not a random name: the two runs compare equal
        dataset=got,
        scorers=[exact],
    )
    step("evaluation", lambda: json.loads(json.dumps(asyncio.run(evaluation.evaluate(model)))))

    _, call = outer.call(7)
    client.flush()
    step("feedback add", lambda: bool(call.feedback.add("correctness", {"value": True})))
    step("feedback note", lambda: bool(call.feedback.add_note("looks right")))
    client.flush()
    step(
        "feedback read",
        lambda: sorted((f.feedback_type, json.dumps(f.payload)) for f in call.feedback),
    )

    def purge() -> int:
        first = next(iter(call.feedback))
        call.feedback.purge(first.id)
        return len(list(call.feedback))

    step("feedback purge", purge)
    _, doomed = add.call(100, 200)
    client.flush()
    step("delete call", lambda: client.delete_call(doomed))
    step(
        "deleted call is gone",
        lambda: len(list(client.get_calls(filter={"call_ids": [doomed.id]}))),
    )
    step("get_calls", lambda: len(list(client.get_calls())))
    step(
        "get_calls query on a number as a string",
        lambda: len(
            list(
                client.get_calls(
                    query={"$expr": {"$eq": [{"$getField": "inputs.x"}, {"$literal": "10"}]}}
                )
            )
        ),
    )
    step("get_call", lambda: client.get_call(call.id).op_name.split("/")[-1].split(":")[0])
    step("get_evaluations", lambda: len(client.get_evaluations()))
    step("call.set_display_name", lambda: call.set_display_name("renamed seven"))
    client.flush()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
