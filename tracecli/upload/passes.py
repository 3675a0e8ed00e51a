"""A run in passes, the way `upload --follow` (upload/follow.py) and an upload from a pipe
that stays open (upload/stdin_live.py) both run: one ordinary upload per pass, with what
lives across the passes here — the signals that end the run between two passes, the
patience of a start waiting for its end, diagnostics said once, and one rejected-records
file for the whole run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tracecli.diagnostics import Diagnostic
from tracecli.upload.api import UploadOptions

SEEN_LIMIT = 100_000  # diagnostics said once: forget them all beyond this many (memory)


class PassSignals:
    """SIGTERM/SIGINT between passes (a pass installs its own handler and is interrupted
    by the same signals, see upload.report.Interrupt)."""

    def __init__(self, wake: threading.Event) -> None:
        self.event = wake  # the loop's wait: a signal ends it at once
        self.signum: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum
        self.event.set()

    def install(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore


class PairPatience:
    """When each open start was first read, for `pair_wait`; forgotten soon after it no
    longer waits, so memory follows the open calls, not the day's traffic."""

    def __init__(self, pair_wait: float) -> None:
        self.pair_wait = pair_wait
        self.first_seen: dict[str, float] = {}
        self.waiting: set[str] = set()

    def __call__(self, call_id: str) -> bool:
        now = time.monotonic()
        t = self.first_seen.setdefault(call_id, now)
        wait = now - t < self.pair_wait
        if wait:
            self.waiting.add(call_id)
        return wait

    def new_pass(self) -> None:
        self.waiting = set()
        limit = time.monotonic() - self.pair_wait - 60.0
        if len(self.first_seen) > 1024:
            self.first_seen = {k: t for k, t in self.first_seen.items() if t >= limit}

    def next_due(self) -> float | None:
        """When the oldest waiting start stops waiting (monotonic), if any waits."""
        if not self.waiting:
            return None
        return min(self.first_seen[c] for c in self.waiting) + self.pair_wait


def said_once(callback: Callable[[Diagnostic], None] | None) -> Callable[[Diagnostic], None]:
    """Diagnostics said once per follow: a rejected line is read again by every pass (it
    is not stored, so the journal does not move past it), and a start waiting for its end
    is not yet "a call that stays running"."""
    seen: set[tuple[str, int, str]] = set()

    def say(d: Diagnostic) -> None:
        if d.code == "running-call":
            return
        key = (d.path, d.line, d.code)
        if key in seen:
            return
        if len(seen) >= SEEN_LIMIT:
            seen.clear()
        seen.add(key)
        if callback is not None:
            callback(d)

    return say


class FollowRejects:
    """One rejected-records file for the whole follow. A pass writes its own (the usual
    writer replaces the file each run, which would lose what earlier passes rejected);
    its records are then appended here, each (source, line, reason) once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pass_path = path.with_name(path.name + ".pass-tmp")
        self.seen: set[tuple[str, int, str]] = set()

    def collect(self) -> None:
        try:
            data = self.pass_path.read_bytes()
        except OSError:
            return
        out: list[bytes] = []
        for raw in data.splitlines():
            try:
                meta = orjson.loads(raw).get("_tracecli") or {}
                key = (str(meta.get("source")), int(meta.get("line") or 0), str(meta.get("reason")))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                key = ("", 0, raw.decode("utf-8", "replace"))
            if key in self.seen:
                continue
            if len(self.seen) >= SEEN_LIMIT:
                self.seen.clear()
            self.seen.add(key)
            out.append(raw + b"\n")
        if out:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as f:
                f.writelines(out)
        with contextlib.suppress(OSError):
            self.pass_path.unlink()


def pair_wait_applies(opts: UploadOptions) -> bool:
    """Whether a start waits for its end (`pair_wait`): in Weave's auto mode, where the
    wait lets it go as one completed call (after it, it goes as a running call); in
    complete mode and for Freeplay, which take finished calls only (a start still alone
    when the wait ends is rejected as having no end, yet read again by later passes, which
    send it with its end if that comes). Batch, single and otel modes send a start as it
    is read, by design."""
    return opts.target == "freeplay" or opts.mode in ("auto", "complete")
