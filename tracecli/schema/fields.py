"""The call schemas' field names, without pydantic: what the fast path and the wire need.

`weave.py`'s models are the truth; importing them (pydantic and ~15 model classes) costs
more start-up time than `tracecli validate` of a small file takes, and the fast path only
needs their keys. tests/test_startup.py holds these names equal to the models' fields.
"""

from __future__ import annotations

from tracecli.weave_usage import USAGE_FIELDS

__all__ = ["COMPLETED_FIELDS", "ENDED_FIELDS", "END_FIELDS", "STARTED_FIELDS", "USAGE_FIELDS"]

STARTED_FIELDS = (
    *("project_id", "id", "op_name", "display_name", "trace_id", "parent_id", "thread_id"),
    *("turn_id", "started_at", "attributes", "inputs", "otel_dump", "wb_user_id", "wb_run_id"),
    "wb_run_step",
)
ENDED_FIELDS = (
    *("project_id", "id", "started_at", "ended_at", "exception", "output", "summary"),
    "wb_run_step_end",
)
COMPLETED_FIELDS = (
    *("project_id", "id", "trace_id", "op_name", "display_name", "parent_id", "thread_id"),
    *("turn_id", "started_at", "ended_at", "attributes", "inputs", "output", "summary"),
    *("exception", "otel_dump", "wb_user_id", "wb_run_id", "wb_run_step", "wb_run_step_end"),
)
# what an end adds to its start: a completed call without these is a running one
END_FIELDS = ("ended_at", "exception", "output", "summary", "wb_run_step_end")
