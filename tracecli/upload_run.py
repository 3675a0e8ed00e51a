"""One pass of `upload` over the inputs: the reading loop and the fate of every record.

`Run.read_all` is the hot loop (one thread): parse and validate each record with validate's
own code, encode it once, pair it, and hand full chunks to the `Sender`. The sender's
workers call back `acked`, `rejected` and `unsent`; those journal and count under one lock.
Kept apart from `upload.py` (options, report, setup) so the loop can be read on its own.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from tracecli.blocks import broken_id
from tracecli.checks import CrossChecker
from tracecli.chunking import (
    LINE_MASK,
    LINE_SHIFT,
    SINGLE,
    SRC_SHIFT,
    Chunk,
    Chunker,
    Unit,
    pack,
    unpack,
)
from tracecli.diagnostics import Diagnostic, Severity
from tracecli.encode import (
    CALL_END,
    CALL_START,
    END_KEYS,
    UPSERT_BATCH,
    EncodeError,
    batch_end,
    batch_start,
    complete_from,
    complete_route,
    dumps,
    join_objects,
    single_end,
    single_start,
    split_complete,
    split_end,
)
from tracecli.journal import Journal
from tracecli.pairing import DUPLICATE, Half, Pairer
from tracecli.reader import Source, format_of
from tracecli.records import parse_record, wrap
from tracecli.rejected import RejectedWriter
from tracecli.schema.fastcheck import (
    COMPLETE_KEYS,
    FLAT_COMPLETE_KEYS,
    FLAT_END_KEYS,
    FLAT_START_KEYS,
    START_KEYS,
    Facts,
    complete_facts,
    end_facts,
    start_facts,
)
from tracecli.schema.fastcheck import END_KEYS as END_FIELD_KEYS
from tracecli.schema.weave import END_FIELDS
from tracecli.targets import endpoint_label

if TYPE_CHECKING:
    from tracecli.sender import Sender
    from tracecli.upload import FileReport, UploadOptions, UploadReport

PROGRESS_EVERY = 0.2  # seconds between progress callbacks
MAX_RAW_LINES = 10_000  # unparsable lines per file whose text goes to the rejected file
_EMPTY: frozenset[int] = frozenset()


def fast_body(v: dict[str, Any]) -> tuple[Facts, str, dict[str, Any]] | None:
    """(facts, shape, call body) of a record the fast path finds certainly valid, else None
    (then `parse_record` gives the real answer). The shapes as `records.parse_record`
    detects them; a flat record's body still holds its "type" (the caller drops it)."""
    t = v.get("type")
    if t is not None:
        if t == "start":
            return _with(start_facts(v, FLAT_START_KEYS, True), "flat", v)
        if t == "end":
            return _with(end_facts(v, FLAT_END_KEYS, True), "flat", v)
        if t == "call":
            return _with(complete_facts(v, FLAT_COMPLETE_KEYS, True), "flat", v)
        return None
    if "req" in v:
        t = v.get("mode")
        req = v["req"]
        if len(v) != 2 or type(req) is not dict or len(req) != 1:
            return None
        body = req.get(t)  # type: ignore[arg-type]
        if type(body) is not dict:
            return None
        if t == "start":
            return _with(start_facts(body, START_KEYS, True), "batch", body)
        if t == "end":
            return _with(end_facts(body, END_FIELD_KEYS, True), "batch", body)
        return None
    if len(v) == 1:
        if "start" in v:
            body = v["start"]
            ok = type(body) is dict and start_facts(body, START_KEYS, True)
        elif "end" in v:
            body = v["end"]
            ok = type(body) is dict and end_facts(body, END_FIELD_KEYS, True)
        else:
            return None
        return (ok, "request", body) if ok else None
    if "messages" in v or "session_id" in v:
        return None
    if "op_name" in v and "ended_at" in v:
        return _with(complete_facts(v, COMPLETE_KEYS, True), "complete", v)
    return None


def _with(
    facts: Facts | None, shape: str, body: dict[str, Any]
) -> tuple[Facts, str, dict[str, Any]] | None:
    return None if facts is None else (facts, shape, body)


def call_body(value: Any) -> dict[str, Any] | None:
    """The call object inside a record of any Weave shape (where project_id lives)."""
    if not isinstance(value, dict):
        return None
    if "type" in value:
        return value
    if "mode" in value and "req" in value:
        req = value.get("req")
        mode = value.get("mode")
        body = req.get(mode) if isinstance(req, dict) and isinstance(mode, str) else None
        return body if isinstance(body, dict) else None
    if len(value) == 1 and ("start" in value or "end" in value):
        body = value.get("start", value.get("end"))
        return body if isinstance(body, dict) else None
    if "op_name" in value and "ended_at" in value:
        return value
    return None


def raw_lines(path: str, wanted: set[int]) -> dict[int, str]:
    """The text of the given lines of a JSONL file (for lines that are not JSON, so the
    rejected file holds what to fix); empty for stdin and YAML."""
    if path == "-" or format_of(path) != "jsonl" or not wanted:
        return {}
    out: dict[int, str] = {}
    last = max(wanted)
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if n in wanted:
                    out[n] = line.rstrip(b"\r\n").decode("utf-8", "replace")
                if n >= last:
                    break
    except (OSError, EOFError, zlib.error):
        pass
    return out


class Run:
    def __init__(
        self,
        *,
        files: list[str],
        opts: UploadOptions,
        report: UploadReport,
        journal: Journal | None,
        writer: RejectedWriter,
        interrupted: Callable[[], bool],
        on_progress: Callable[[Any], None] | None,
        max_diagnostics: int,
        chunker: Chunker,
    ) -> None:
        from tracecli.upload import FileReport

        self.files = files
        self.opts = opts
        self.mode = opts.mode
        self.report = report
        self.journal = journal
        self.writer = writer
        self.interrupted = interrupted
        self.on_progress = on_progress
        self.max_diagnostics = max_diagnostics
        self.chunker = chunker
        self.sender: Sender | None = None
        self.checker = CrossChecker(strict=opts.strict)
        self.pairer = Pairer(opts.memory_budget)
        self.lock = threading.Lock()
        self.file_reports: list[FileReport] = [FileReport(p) for p in files]
        report.files = self.file_reports
        self.sources: list[Source | None] = [None] * len(files)
        self.display: list[str] = list(files)  # path as Locations name it ("<stdin>" for -)
        self.routes: dict[str, str] = {}
        self.started = time.monotonic()
        self._last_progress = 0.0
        self.bytes_total: int | None = 0

    # -- reading --------------------------------------------------------------------------
    def read_all(self) -> None:
        report = self.report
        journal = self.journal
        states = []
        for i, path in enumerate(self.files):
            if journal is not None:
                st = journal.file(path)
                self.file_reports[i].changed = st.changed
                states.append(st)
            src = Source.open(path, self.opts.input_format)
            self.sources[i] = src
            self.display[i] = src.path
            if src.size is None:
                self.bytes_total = None
            elif self.bytes_total is not None:
                self.bytes_total += src.size
        for i, path in enumerate(self.files):
            if self.interrupted() or self._stopped():
                break
            acked = journal.acked(path) if journal is not None else _EMPTY
            self._read_file(i, acked)
        else:
            self._finish_inputs()
            self._flush()
        report.peak_open_calls = self.pairer.peak_open
        report.spilled = self.pairer.spilled
        self._progress(force=True)

    def _stopped(self) -> bool:
        return self.sender is not None and self.sender.fatal is not None

    def _read_file(self, src_index: int, acked: Any) -> None:
        source = self.sources[src_index]
        assert source is not None
        fr = self.file_reports[src_index]
        any_acked = len(acked) > 0
        project = self.opts.project
        strict = self.opts.strict
        parse = parse_record
        checker = self.checker
        feed = checker.feed
        drain = checker.drain
        interrupted = self.interrupted
        unreadable: list[Diagnostic] = []
        out: list[Diagnostic] = []
        feed_call = checker.feed_call
        n = 0
        for item in source:
            n += 1
            if not n & 255:
                if interrupted() or self._stopped():
                    break
                self._progress()
            if type(item) is not tuple:
                unreadable.append(item)  # type: ignore[arg-type]
                continue
            loc, value = item
            if project is not None:
                body = call_body(value)
                if body is not None and body.get("project_id") != project:
                    orig_project = body.get("project_id")
                    body["project_id"] = project
                else:
                    orig_project = None
            else:
                orig_project = None
            fast = fast_body(value) if type(value) is dict else None
            if fast is not None:
                # certainly valid on its own (no error, no warning): only the checks across
                # records remain, fed the facts the fast path computed
                facts, shape, data = fast
                feed_call(loc.path, loc.line, *facts, out)
                if out:
                    diags = list(out)
                    out.clear()
                    if strict:
                        diags = [d.as_error() for d in diags]
                    if any(d.severity is Severity.ERROR for d in diags):
                        self._invalid(value, loc.path, loc.line, diags, orig_project)
                        continue
                    self._warn(diags)
                kind = facts[0]
                if shape == "flat":
                    del data["type"]
            else:
                parsed = parse(loc, value)
                rec = parsed.record
                diags = parsed.diagnostics
                if rec is None:
                    checker.note_refused(loc, value)
                    self._invalid(value, loc.path, loc.line, diags, orig_project)
                    continue
                more = feed(rec)
                if more:
                    diags = diags + more
                if diags:
                    if strict:
                        diags = [d.as_error() for d in diags]
                    if any(d.severity is Severity.ERROR for d in diags):
                        self._invalid(value, loc.path, loc.line, diags, orig_project)
                        continue
                    self._warn(diags)
                kind, shape, data = rec.kind, rec.shape, rec.data
            late = drain()
            if late:
                self._late(late)
            done = any_acked and loc.line in acked
            try:
                self._take(kind, data, shape, src_index, loc.line, done, orig_project)
            except EncodeError as exc:
                self._invalid(
                    value,
                    loc.path,
                    loc.line,
                    [Diagnostic.at(loc, "encode", str(exc), "(record)")],
                    orig_project,
                )
        fr.records = n
        if unreadable:
            raw = raw_lines(self.files[src_index], {d.line for d in unreadable[:MAX_RAW_LINES]})
            for d in unreadable:
                text = raw.get(d.line)
                if text is not None:  # its call's other half must not warn as well
                    found: list[Any] = []
                    broken_id(text.encode(), d.line, found)
                    for e in found:
                        checker.note_refused_id(d.path, d.line, e[2])
                self._invalid(text, d.path, d.line, [d])

    def _take(
        self,
        kind: str,
        data: dict[str, Any],
        shape: str,
        src: int,
        line: int,
        done: bool,
        orig_project: str | None,
    ) -> None:
        if done:
            self.report.skipped += 1
            self.file_reports[src].skipped += 1
        if kind == "start":
            half = Half(
                "start",
                data["id"],
                data["project_id"],
                dumps(data),
                b"",
                not END_KEYS.isdisjoint(data),
                src,
                line,
                shape,
                done,
                None,
                orig_project,
            )
        elif kind == "end":
            body, tail = split_end(data)
            half = Half(
                "end",
                data["id"],
                data["project_id"],
                body,
                tail,
                len(data) > 2 + len(tail_keys(data)),  # fields a completed call drops
                src,
                line,
                shape,
                done,
                None,
                orig_project,
            )
        elif kind == "complete":
            if done:
                return
            half = Half(
                "complete",
                data["id"],
                data["project_id"],
                dumps(data),
                b"",
                False,
                src,
                line,
                shape,
                False,
                None,
                orig_project,
            )
            self._emit_complete(half)
            return
        else:  # a Freeplay completion: not a Weave call
            self.rejected_now(
                [(data, src, line)], "a Freeplay completion: `tracecli upload` sends Weave calls"
            )
            return
        other = self.pairer.match(half)
        if other is None:
            return
        if other is DUPLICATE:  # CrossChecker reports duplicates first; this is a safeguard
            self.rejected_halves([half], f"call id {half.call_id} already has a {half.kind}")
            return
        assert isinstance(other, Half)
        if kind == "start":
            self._emit_pair(half, other)
        else:
            self._emit_pair(other, half)

    # -- units ------------------------------------------------------------------------------
    def _route(self, project: str) -> str:
        r = self.routes.get(project)
        if r is None:
            r = self.routes[project] = complete_route(project)
        return r

    def _emit_pair(self, s: Half, e: Half) -> None:
        if s.done or e.done:
            if s.done and e.done:
                return
            self._emit_lone(e if s.done else s, resumed=True)
            return
        mode = self.mode
        recs = (pack(s.src, s.line, "start", s.shape), pack(e.src, e.line, "end", e.shape))
        extra = None
        if s.orig is not None or e.orig is not None or (e.clash and mode in ("auto", "complete")):
            extra = ((s.orig, e.orig), e.body if e.clash else None)
        if mode == "auto" or mode == "complete":
            part = complete_from(s.body, s.clash, e.tail)
            unit = Unit(self._route(s.project), (part,), recs, extra)
        elif mode == "batch":
            end = batch_end(join_objects(e.body, e.tail))
            unit = Unit(UPSERT_BATCH, (batch_start(s.body), end), recs, extra)
        else:
            end = single_end(join_objects(e.body, e.tail))
            unit = Unit(SINGLE, (single_start(s.body), end), recs, extra, (CALL_START, CALL_END))
        self._add(unit)

    def _emit_complete(self, h: Half) -> None:
        mode = self.mode
        recs = (pack(h.src, h.line, "complete", h.shape),)
        extra = None if h.orig is None else ((h.orig,), None)
        if mode == "auto" or mode == "complete":
            self._add(Unit(self._route(h.project), (h.body,), recs, extra))
            return
        start, end_rest, end_tail = split_complete(h.body)
        end = join_objects(end_rest, end_tail)
        if mode == "batch":
            self._add(Unit(UPSERT_BATCH, (batch_start(start), batch_end(end)), recs, extra))
        else:
            parts = (single_start(start), single_end(end))
            self._add(Unit(SINGLE, parts, recs, extra, (CALL_START, CALL_END)))

    def _emit_lone(self, h: Half, resumed: bool = False) -> None:
        """A start with no end, or an end with no start, in the inputs."""
        if h.done:
            return
        if self.mode == "complete" and not resumed:
            other = "end" if h.kind == "start" else "start"
            self.rejected_halves(
                [h],
                f"this call's {other} is not in the inputs, and --mode complete sends only "
                "completed calls (--mode auto sends it through call/upsert_batch)",
            )
            return
        if h.kind == "start":
            body = h.body
            part = single_start(body) if self.mode == "single" else batch_start(body)
            step = CALL_START
        else:
            body = join_objects(h.body, h.tail)
            part = single_end(body) if self.mode == "single" else batch_end(body)
            step = CALL_END
        recs = (pack(h.src, h.line, h.kind, h.shape),)
        extra = None if h.orig is None else ((h.orig,), None)
        if self.mode == "single":
            self._add(Unit(SINGLE, (part,), recs, extra, (step,)))
        else:
            self._add(Unit(UPSERT_BATCH, (part,), recs, extra))

    def _add(self, unit: Unit) -> None:
        for chunk in self.chunker.add(unit):
            assert self.sender is not None
            self.sender.submit(chunk, self.interrupted)

    def _flush(self) -> None:
        for chunk in self.chunker.flush():
            assert self.sender is not None
            self.sender.submit(chunk, self.interrupted)

    def _finish_inputs(self) -> None:
        """End of all inputs: what the checker could not say before, and unpaired halves."""
        final = self.checker.finish()
        if self.opts.strict:
            final = [d.as_error() for d in final]
        self._late(final)
        for h in self.pairer.leftovers():
            if self.interrupted() or self._stopped():
                if not h.done:
                    with self.lock:
                        self.report.unsent += 1
                continue
            self._emit_lone(h)

    # -- diagnostics ------------------------------------------------------------------------
    def _keep(self, diags: Sequence[Diagnostic]) -> None:
        report = self.report
        room = self.max_diagnostics - len(report.diagnostics)
        if room > 0:
            report.diagnostics.extend(diags[:room])
        cb = self.opts.on_diagnostic
        if cb is not None:
            for d in diags:
                cb(d)

    def _warn(self, diags: Sequence[Diagnostic]) -> None:
        with self.lock:
            self.report.warnings += len(diags)
            self._keep(diags)

    def _late(self, diags: Sequence[Diagnostic]) -> None:
        """Diagnostics about records read earlier (maybe sent already): counted, shown."""
        if not diags:
            return
        with self.lock:
            for d in diags:
                if d.is_error:
                    self.report.errors += 1
                else:
                    self.report.warnings += 1
            self._keep(diags)

    def _invalid(
        self,
        value: Any,
        path: str,
        line: int,
        diags: Sequence[Diagnostic],
        orig_project: str | None = None,
    ) -> None:
        errors = [d for d in diags if d.is_error]
        if orig_project is not None:
            body = call_body(value)
            if body is not None:
                body["project_id"] = orig_project
        reason = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in errors)
        with self.lock:
            self.report.errors += len(errors)
            self.report.warnings += len(diags) - len(errors)
            self.report.rejected += 1
            self.report.invalid += 1
            self._keep(diags)
            self.writer.add(
                value,
                path=path,
                line=line,
                reason=reason,
                status=None,
                diagnostics=[d.to_dict() for d in diags],
            )

    # -- fates (called from the sender's threads) -------------------------------------------
    def acked(self, route: str, chunk: Chunk, calls: int) -> None:
        journal = self.journal
        recs = chunk.recs
        if journal is not None and recs:
            by_src: dict[int, list[int]] = {}
            for rec in recs:
                src, line = rec >> SRC_SHIFT, (rec >> LINE_SHIFT) & LINE_MASK
                lines = by_src.get(src)
                if lines is None:
                    by_src[src] = [line]
                else:
                    lines.append(line)
            for src, lines in by_src.items():
                journal.ack(self.files[src], lines)
        label = endpoint_label(route)
        with self.lock:
            r = self.report
            r.acked_records += len(recs)
            r.uploaded += calls
            r.by_endpoint[label] = r.by_endpoint.get(label, 0) + chunk.units

    def rejected(self, chunk: Chunk, reason: str, status: int | None) -> None:
        """The server refused these records (or retries ran out): into the rejected file."""
        self.rejected_now(list(originals(chunk)), reason, status)

    def rejected_halves(self, halves: Sequence[Half], reason: str) -> None:
        items = []
        for h in halves:
            data: dict[str, Any] = orjson.loads(join_objects(h.body, h.tail) if h.tail else h.body)
            if h.orig is not None:
                data["project_id"] = h.orig
            items.append((wrap(h.shape, h.kind, data), h.src, h.line))  # type: ignore[arg-type]
        self.rejected_now(items, reason)

    def rejected_now(
        self,
        items: Sequence[tuple[dict[str, Any], int, int]],
        reason: str,
        status: int | None = None,
    ) -> None:
        code = f"http-{status}" if status is not None else "not-sent"
        diags = []
        with self.lock:
            for original, src, line in items:
                path = self.display[src]
                self.writer.add(original, path=path, line=line, reason=reason, status=status)
                self.report.rejected += 1
                diags.append(Diagnostic(path, line, "", code, Severity.ERROR, reason))
            self._keep(diags)

    def unsent(self, chunk: Chunk) -> None:
        with self.lock:
            self.report.unsent += len(chunk.recs)

    # -- progress ---------------------------------------------------------------------------
    def _progress(self, force: bool = False) -> None:
        cb = self.on_progress
        if cb is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        from tracecli.upload import Progress

        r = self.report
        read = sum(s.bytes_read for s in self.sources if s is not None)
        retries = 0
        if self.sender is not None:
            retries = self.sender.target.stats()[1]
        cb(
            Progress(
                bytes_read=read,
                bytes_total=self.bytes_total,
                records=sum(s.records for s in self.sources if s is not None),
                uploaded=r.uploaded,
                rejected=r.rejected,
                skipped=r.skipped,
                retries=retries,
                elapsed=now - self.started,
            )
        )

    def tick(self) -> None:
        self._progress()

    def close(self) -> None:
        self.report.records = sum(f.records for f in self.file_reports)
        self.pairer.close()


def tail_keys(data: dict[str, Any]) -> list[str]:
    return [k for k in END_FIELDS if k in data]


def originals(chunk: Chunk) -> Iterator[tuple[dict[str, Any], int, int]]:
    """Each record of a chunk as it was read (its shape's wrapping, its own project_id),
    rebuilt from the bytes that were sent: (record, input index, line)."""
    complete_route = chunk.route.endswith("/calls/complete")
    for i in range(chunk.units):
        unit = chunk.unit(i)
        parts: dict[str, dict[str, Any]] = {}
        for item in unit.parts:
            d = orjson.loads(item)
            if complete_route:
                parts["complete"] = d
            elif "mode" in d:
                parts[d["mode"]] = d["req"][d["mode"]]
            else:
                key = "start" if "start" in d else "end"
                parts[key] = d[key]
        projects, end_rest = unit.extra or (None, None)
        for j, rec in enumerate(unit.recs):
            src, line, kind, shape = unpack(rec)
            whole = parts.get("complete")
            if kind == "complete":
                data = whole if whole is not None else {**parts["start"], **parts["end"]}
            elif kind == "start":
                data = parts.get("start") or {k: v for k, v in whole.items() if k not in END_KEYS}
            else:
                data = parts.get("end") or {
                    "project_id": whole["project_id"],
                    "id": whole["id"],
                    **(orjson.loads(end_rest) if end_rest else {}),
                    **{k: whole[k] for k in END_FIELDS if k in whole},
                }
            data = dict(data)
            if projects is not None and j < len(projects) and projects[j] is not None:
                data["project_id"] = projects[j]
            yield wrap(shape, kind, data), src, line  # type: ignore[arg-type]
