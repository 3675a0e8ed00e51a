"""What weave's server holds a feedback item to before storing it (its
`validate_feedback_create_req`): a note or reaction payload of its shape, the refs each kind
of feedback needs or may not carry. serve stored any; weave answers each of these a 400 in
the words below, which `feedback_problem` gives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

ANNOTATION = "wandb.annotation"
RUNNABLE = "wandb.runnable"
AGENT_MONITOR = "wandb.agent_monitor"


# weave's model names: its 400 quotes them (pydantic's "validation error for …").
class FeedbackPayloadNoteReq(BaseModel):
    note: str = Field(min_length=1, max_length=1024)


class FeedbackPayloadReactionReq(BaseModel):
    emoji: str


_PAYLOADS: dict[str, type[BaseModel]] = {
    "wandb.note.1": FeedbackPayloadNoteReq,
    "wandb.reaction.1": FeedbackPayloadReactionReq,
}


def _kind_problem(kind: str, item: Mapping[str, Any]) -> str | None:
    """weave's rules on which refs a feedback type needs and which it may not carry."""
    if kind.startswith(ANNOTATION):
        if not kind.startswith(ANNOTATION + "."):
            return f"Invalid annotation feedback type: {kind}"
        if not item.get("annotation_ref"):
            return "annotation_ref is required for annotation feedback"
        return None
    if item.get("annotation_ref"):
        return "annotation_ref is not allowed for non-annotation feedback"
    if kind.startswith(RUNNABLE):
        if not kind.startswith(RUNNABLE + "."):
            return f"Invalid runnable feedback type: {kind}"
        if not item.get("runnable_ref"):
            return "runnable_ref is required for runnable feedback"
        return None
    if kind == AGENT_MONITOR:
        for key in ("runnable_ref", "call_ref", "trigger_ref"):
            if item.get(key) is None or (key == "runnable_ref" and not item.get(key)):
                return f"{key} is required for agent monitor feedback"
        return None
    for key in ("runnable_ref", "call_ref", "trigger_ref"):
        if item.get(key):
            return f"{key} is not allowed for non-runnable feedback"
    return None


def feedback_problem(item: Mapping[str, Any]) -> str | None:
    """weave's 400 reason for a feedback item it refuses, or None. Checked: the payload of a
    note (`note`, 1 to 1024 characters) or reaction (`emoji`), and the refs by type."""
    kind = str(item.get("feedback_type", ""))
    schema = _PAYLOADS.get(kind)
    payload = item.get("payload")
    if schema is not None and isinstance(payload, Mapping):
        try:
            schema.model_validate(dict(payload))
        except ValidationError as exc:
            return f"Invalid payload for feedback_type {kind}: {exc}"
    return _kind_problem(kind, item)
