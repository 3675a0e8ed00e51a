"""The Freeplay golden files and the official SDK's request bodies (tests/golden/freeplay),
shared by the convert, Freeplay upload and follow tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "freeplay"
SESSION = "0b7e6c2a-5d4f-4e8a-9c1b-2f3a4d5e6f70"  # the session of the SDK examples


# What a Weave call cannot say, so the converter never writes it: prompt-template variables
# and version, session metadata (and the SDK's top-level copy of it), test runs, eval scores,
# the provider batch flag. A trace's custom_metadata does come from the call's attributes.
NOT_IN_WEAVE = {"inputs", "prompt_info", "session_info", "custom_metadata", "test_run_info",
                "eval_results"}  # fmt: skip
NOT_IN_WEAVE_TRACE = {"test_run_info", "eval_results"}


def sdk_view(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK's body minus what a Weave call cannot carry, and minus the keys the Python SDK
    sends as null when unset (tracecli omits unset keys, as the Node SDK does)."""
    skip = NOT_IN_WEAVE if "messages" in body else NOT_IN_WEAVE_TRACE
    out = {k: v for k, v in body.items() if v is not None and k not in skip}
    if "call_info" in out:
        ci = {k: v for k, v in out["call_info"].items() if v is not None and k != "api_style"}
        out["call_info"] = ci
    return out


def sdk(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / "sdk" / f"{name}.json").read_text(encoding="utf-8"))
