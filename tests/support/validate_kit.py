"""Small valid records and file writers for the validate, records and reader tests."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

P = "acme/agents"
T0 = "2026-03-02T09:14:05Z"
T1 = "2026-03-02T09:14:06.5Z"


def new_id() -> str:
    return str(uuid.uuid4())


def start(cid: str, trace: str, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "start",
        "project_id": P,
        "id": cid,
        "op_name": "agent.run" if parent is None else "openai.chat.completions.create",
        "trace_id": trace,
        "parent_id": parent,
        "started_at": T0,
        "attributes": {},
        "inputs": {"question": "where is my order?"},
    }
    rec.update(kw)
    return rec


def end(cid: str, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "end",
        "project_id": P,
        "id": cid,
        "ended_at": T1,
        "output": {"answer": "on its way"},
        "summary": {"usage": {"gpt-4o-mini": {"prompt_tokens": 10, "completion_tokens": 3}}},
    }
    rec.update(kw)
    return rec


def complete(cid: str, trace: str, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    rec = {**start(cid, trace, parent), **end(cid)}
    del rec["type"]
    rec.update(kw)
    return rec


def body(rec: dict[str, Any]) -> dict[str, Any]:
    """A flat record without its "type": the call body of the other shapes."""
    return {k: v for k, v in rec.items() if k != "type"}


def call(cid: str | None = None, trace: str | None = None) -> list[dict[str, Any]]:
    cid = cid or new_id()
    return [start(cid, trace or new_id()), end(cid)]


def write_jsonl(path: Path, records: list[Any], gz: bool = False) -> Path:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# the three commands that read inputs, each with the arguments it needs around a path
EACH_READER = pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["upload", "--target", "local", "--dry-run"],
        ["convert", "--to", "freeplay", "-o", "out.jsonl"],
    ],
    ids=["validate", "upload", "convert"],
)
