"""What a row of `tail`'s table shows of a call: its start, op, status, duration, tokens,
the end of its id and the first line of its exception (raw text: the CLI makes it safe)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal, cast

Status = Literal["running", "success", "error", "descendant_error"]


def _parse_ts(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.UTC)


def status_of(call: Mapping[str, Any]) -> Status:
    summary = call.get("summary")
    weave = summary.get("weave") if isinstance(summary, Mapping) else None
    status = weave.get("status") if isinstance(weave, Mapping) else None
    if status in ("running", "success", "error", "descendant_error"):
        return cast(Status, status)
    if call.get("exception"):
        return "error"
    return "running" if call.get("ended_at") is None else "success"


def duration_of(call: Mapping[str, Any]) -> float | None:
    start, end = _parse_ts(call.get("started_at")), _parse_ts(call.get("ended_at"))
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def tokens_of(call: Mapping[str, Any]) -> int | None:
    """Total tokens over every model in summary.usage (total_tokens, else input + output)."""
    summary = call.get("summary")
    usage = summary.get("usage") if isinstance(summary, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    total, found = 0, False
    for u in usage.values():
        if not isinstance(u, Mapping):
            continue
        t = u.get("total_tokens")
        if not isinstance(t, int):
            parts = [
                u.get("prompt_tokens", u.get("input_tokens")),
                u.get("completion_tokens", u.get("output_tokens")),
            ]
            ints = [p for p in parts if isinstance(p, int)]
            t = sum(ints) if ints else None
        if t is not None:
            total, found = total + t, True
    return total if found else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:  # a call that ends before it starts: weave stores it so
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"  # floored, as the server's summary.weave.latency_ms
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_start(value: Any) -> str:
    dt = _parse_ts(value)
    if dt is None:
        return str(value or "")
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


STATUS_LABELS = {
    "running": "running",
    "success": "success",
    "error": "error",
    "descendant_error": "child error",
}
COLUMNS = ("started (UTC)", "op", "status", "duration", "tokens", "id", "exception")


_TRACEBACK_HEAD = "Traceback (most recent call last):"


def exception_line(exception: Any) -> str:
    """The exception as one line, type and message: the weave SDK stores it as JSON
    (`{"type": "ValueError", "message": "boom", "traceback": [...]}`): `ValueError: boom`; a
    logged Python traceback ends with that line, so its last line is the one shown; other
    text shows its first line."""
    if not exception:
        return ""
    text = str(exception).strip()
    if text.startswith("{"):
        import orjson  # start-up: `tail --help` (and `--help`) import this module for a width

        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            message = data.get("message")
            text = f"{data['type']}: {message}" if message not in (None, "") else data["type"]
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if _TRACEBACK_HEAD in lines[0]:
        # the exception is the last unindented line (its message may span lines after it)
        unindented = [line for line in lines[1:] if not line[:1].isspace()]
        return (unindented[0] if unindented else lines[-1]).strip()
    return lines[0]


ID_SHOWN = 8  # the end of an id: what the table shows and --id/--trace accept


def row_of(call: Mapping[str, Any]) -> tuple[str, ...]:
    """The table cells of one call, in COLUMNS order (raw text: the CLI makes it safe)."""
    op = call.get("display_name") or call.get("op_name") or ""
    if isinstance(op, str) and op.startswith("weave:///"):
        op = op.rsplit("/", 1)[-1].split(":", 1)[0] or op
    tokens = tokens_of(call)
    first = exception_line(call.get("exception"))
    return (
        format_start(call.get("started_at")),
        str(op),
        STATUS_LABELS[status_of(call)],
        format_duration(duration_of(call)),
        f"{tokens:,}" if tokens is not None else "",
        # The end: time-ordered ids (UUIDv7, what the weave SDK makes) share their start;
        # `--id` takes it back (a unique prefix or suffix of an id).
        str(call.get("id") or "")[-ID_SHOWN:],
        first[:200] + ("…" if len(first) > 200 else ""),
    )
