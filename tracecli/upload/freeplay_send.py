"""Freeplay's part of the sending engine: one request per record, and how its answer reads.

The threads, the queue, the outage stop, Ctrl-C and a fatal error are the Weave upload's
(`upload.sender.Workers`); what is Freeplay's own is here: a record becomes one request
(`targets.freeplay.build_request`, done by the reading loop), and its answer is read as
Freeplay means it (a 404 "Project not found", an API base that is not Freeplay's, a 2xx
that is not Freeplay's acknowledgement stop the run rather than reject every record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from tracecli.config.fields import strip_userinfo
from tracecli.diagnostics import UsageError
from tracecli.freeplay.stream import Piece
from tracecli.targets.freeplay import (
    DEFAULT_API_BASE,
    FreeplaySettings,
    FreeplayTarget,
    Request,
)
from tracecli.targets.outcome import Outcome, no_route_error
from tracecli.targets.retry import Action
from tracecli.upload.sender import Workers


class Job(NamedTuple):
    """One record to send: what was read, its request, its ledger key."""

    piece: Piece
    request: Request
    key: bytes


class Verdicts(NamedTuple):
    """What the sender tells the run about each record, on its threads: acked, rejected
    (reason, HTTP status) or unsent, and then settled (its key is no longer in flight)."""

    acked: Callable[[Piece, Request], None]
    rejected: Callable[[Piece, str, int | None], None]
    unsent: Callable[[Piece], None]
    settled: Callable[[bytes], None]


class FreeplaySender(Workers[Job]):
    """Records posted one by one; each ends in exactly one of acked, rejected, unsent,
    and then settled (see `Verdicts`)."""

    who = "Freeplay"
    kept = "acknowledged"

    def __init__(self, target: FreeplayTarget, *, concurrency: int, tell: Verdicts) -> None:
        self.freeplay = target
        super().__init__(target, concurrency=concurrency)
        self.tell = Verdicts(*(self._flight.fenced(fn) for fn in tell))
        self._tell_now = tell

    def _unsent(self, job: Job) -> None:
        self.tell.unsent(job.piece)
        self.tell.settled(job.key)

    def _unsent_abandoned(self, job: Job) -> None:
        self._tell_now.unsent(job.piece)
        self._tell_now.settled(job.key)

    def _send(self, job: Job) -> None:
        try:
            self._post(job)
        finally:
            self.tell.settled(job.key)

    def _post(self, job: Job) -> None:
        piece, request = job.piece, job.request
        out = self.freeplay.post(request.path, request.body)
        stop = self._stop_reason(out, request)
        if stop is not None:  # nothing says it was recorded, nor refused: not acknowledged
            if self.fatal is None:
                self.fatal = UsageError(stop)
            self.tell.unsent(piece)
        elif out.action is Action.OK:
            self._count_give_up(out.action, out)
            self.tell.acked(piece, request)
        elif out.action in (Action.CANCELLED, Action.UNREACHABLE, Action.GIVE_UP):
            self.tell.unsent(piece)  # no verdict on the record: the next run sends it
            self._count_give_up(out.action, out)
        else:  # REJECT: Freeplay refused it
            self.tell.rejected(piece, out.reason, out.status)

    def _stop_reason(self, out: Outcome, request: Request) -> str | None:
        """Why this answer must stop the run rather than say anything of the record."""
        if out.action is Action.OK:
            odd = not_freeplay_answer(out, request)
            return f"{self.freeplay.name} {odd}" if odd is not None else None
        if out.action is Action.CANCELLED:
            return None
        if out.status == 404 and "project not found" in out.reason.lower():
            project = request.path.split("/")[3]
            return (
                f"Freeplay says: {out.reason} (project {project}; check --project "
                "and that the key has access to it)"
            )
        if out.status in (400, 409, 422):  # a proxy's page, not Freeplay's JSON refusal
            page = no_route_error(out, strip_userinfo(self.freeplay.settings.api_base))
            return str(page) if page is not None else None
        return wrong_api_base(out, self.freeplay.settings)


def wrong_api_base(out: Outcome, settings: FreeplaySettings) -> str | None:
    """Why every request would fail, when a 404/405 says the API base is not Freeplay's API
    (e.g. FREEPLAY_API_BASE without `/api`): stopping at once beats rejecting every record.
    Freeplay's own 404s ("Project not found", an unknown id) carry a JSON `message` and are
    answered on a base ending in /api; anything else is taken as "no such route"."""
    if out.status not in (404, 405):
        return None
    freeplay_like = isinstance(out.body, dict) and isinstance(out.body.get("message"), str)
    if freeplay_like and urlsplit(settings.api_base).path.rstrip("/").endswith("/api"):
        return None
    base = strip_userinfo(settings.api_base)
    return (
        f"{base} answered HTTP {out.status} ({out.reason or 'no message'}): "
        "it does not look like Freeplay's API; the API base (--server, FREEPLAY_API_BASE) "
        f"includes /api, e.g. {DEFAULT_API_BASE} or https://<subdomain>.freeplay.ai/api"
    )


def not_freeplay_answer(out: Outcome, request: Request) -> str | None:
    """Why a 2xx is not Freeplay's acknowledgement, if it is not: Freeplay answers a
    completion with `{"completion_id": ...}` and a trace with a JSON object (201 `{}`), as
    the SDK expects. A web page answering 200 (an API base without `/api` in front of a web
    app) must not count as stored. Only what positively is not that answer counts (a
    content type that is not JSON, a JSON object without the id), so an answer read
    without its body still passes."""
    ctype = out.headers.get("content-type", "")
    not_json = bool(ctype) and "json" not in ctype.lower()
    body = out.body
    no_id = (
        request.kind == "completions"
        and isinstance(body, dict)
        and not isinstance(body.get("completion_id"), str)
    )
    if not (not_json or no_id):
        return None
    return (
        f"answered HTTP {out.status} ({ctype}) without Freeplay's JSON acknowledgement: it "
        "does not look like Freeplay's API; the API base (--server, FREEPLAY_API_BASE) "
        f"includes /api, e.g. {DEFAULT_API_BASE}"
    )
