"""`tracecli convert OTLP-FILE... --to weave`: spans → Weave completed calls, one per line.

What it writes is what weave's server stores when the same spans are posted to its
`/otel/v1/traces` route (see to_weave.py), as `CompletedCallSchemaForInsert` JSON lines that
`tracecli upload` sends unchanged through `calls/complete`. Spans that cannot be converted
are reported (file, line, field path) and left out; the report's exit code says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from tracecli.diagnostics import Diagnostic, Location, UsageError
from tracecli.inputs.reader import Source, expand_paths
from tracecli.otel.checks import NO_PROJECT, REFUSED, SpanLedger
from tracecli.otel.deep_text import deep_warning
from tracecli.otel.read import SpanAt, Unread, read_spans
from tracecli.otel.spans import Span
from tracecli.otel.times import OVERRIDES_HEAD, end_before_start, reversed_call
from tracecli.otel.to_weave import MappingError, span_to_call
from tracecli.wire import encode

MAX_DIAGNOSTICS = 200


@dataclass
class OtelConvertReport:
    """What `convert --to weave` did with OTLP inputs (counted in spans, not records)."""

    to: str = "weave"
    files: int = 0
    lines: int = 0  # OTLP requests read
    spans: int = 0  # spans read (decoded or not)
    written: int = 0  # calls written
    not_converted: int = 0  # spans left out
    errors: int = 0
    warnings: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a span was left out or an error said (warnings alone keep 0)."""
        return int(self.errors > 0 or self.not_converted > 0)

    def to_dict(self) -> dict[str, Any]:
        """The report as `--format json` prints it: the counts in field order, then the
        diagnostics."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return out

    def summary_lines(self, where: str) -> list[str]:
        head = (
            f"converted {self.spans:,} OpenTelemetry spans from {self.lines:,} lines of "
            f"{self.files} file(s) into {self.written:,} Weave calls → {where}"
        )
        notes = (
            (self.not_converted, "spans left out (see the errors above)"),
            (self.warnings, "warnings"),
        )
        return [head, *(f"  {n:,} {text}" for n, text in notes if n)]


def check_project(project: str | None) -> None:
    if project is None:
        return
    entity, sep, name = project.partition("/")
    if not sep or not entity or not name or "/" in name:
        raise UsageError(f"--project must be entity/project, got {project!r}")


def encode_call(call: dict[str, Any]) -> bytes:
    """One JSON line, as upload sends it (`encode.dumps`): NaN as null, which is how weave's
    server reads back the NaN it stores; integers beyond 64 bits with their own digits. What
    JSON cannot carry at all (bytes: weave fails on them too) is refused."""
    try:
        return encode.dumps(call) + b"\n"
    except encode.EncodeError as exc:
        raise MappingError(f"the call {exc}: weave fails") from None


class Converted(NamedTuple):
    """A span's call as convert writes it (JSON + "\\n"), and its warning if it ends
    before it starts: what a worker process sends back of a span it converted."""

    line: bytes
    warning: Diagnostic | None


def converted(loc: Location, where: str, span: Span, call: dict[str, Any]) -> Converted:
    """`span`'s call (`span_to_call`'s) encoded, with convert's warning of a call ending
    before it starts. Raises MappingError for a call JSON cannot carry."""
    line = encode_call(call)
    warning = None
    if span.end_time_unix_nano < span.start_time_unix_nano or OVERRIDES_HEAD in span.attributes:
        backwards = reversed_call(span, lambda: call)  # (the usual span: not asked)
        if backwards is not None:  # a warning: weave stores it (no call checks run here)
            warning = end_before_start(loc, where, span, backwards)
    if warning is None and span.deep:  # (weave stores the call: written all the same)
        warning = deep_warning(loc, where, span, call)
    return Converted(line, warning)


class ConvertRun:
    """One conversion: counts, diagnostics handed on as they come, the id ledger."""

    def __init__(
        self,
        report: OtelConvertReport,
        write: Callable[[bytes], Any],
        project: str | None,
        strict: bool,
        on_diagnostic: Callable[[Diagnostic], None] | None,
    ) -> None:
        self.report, self.write, self.project, self.strict = report, write, project, strict
        self.on_diagnostic = on_diagnostic
        self.ledger = SpanLedger()
        self.no_project_in: set[str] = set()  # files told about spans without a project

    def note(self, d: Diagnostic) -> None:
        if self.strict:
            d = d.as_error()
        if d.is_error:
            self.report.errors += 1
        else:
            self.report.warnings += 1
        if len(self.report.diagnostics) < MAX_DIAGNOSTICS:
            self.report.diagnostics.append(d)
        if self.on_diagnostic is not None:
            self.on_diagnostic(d)

    def left_out(self, d: Diagnostic, spans: int = 1) -> None:
        self.note(d)
        self.report.not_converted += spans

    def no_project(self, loc: Location, where: str) -> None:
        """Said once per file (every span of a file usually shares its resource)."""
        self.report.not_converted += 1
        if loc.path in self.no_project_in:
            return
        self.no_project_in.add(loc.path)
        self.note(Diagnostic.at(loc, NO_PROJECT, "no project: the resource has no "
            "wandb.entity/wandb.project attributes; give --project entity/project (this and "
            "every later span of this file without them left out)", where))  # fmt: skip

    def done(self, made: Converted) -> None:
        """A span's call converted (its ids and project taken): its warning, then its line."""
        if made.warning is not None:
            self.note(made.warning)
        self.write(made.line)
        self.report.written += 1

    def span(self, item: SpanAt) -> None:
        loc, where, span = item.loc, item.where, item.span
        duplicate = self.ledger.add(loc, where, span)
        if duplicate is not None:
            return self.left_out(duplicate)
        project = item.project_id or self.project
        if project is None:
            return self.no_project(loc, where)
        try:
            made = converted(loc, where, span, span_to_call(span, project))
        except MappingError as exc:
            return self.left_out(Diagnostic.at(loc, REFUSED, str(exc), exc.field(where)))
        return self.done(made)


# A reader of a source other than this process's (`tracecli.upload.otlp_convert`: blocks of
# lines mapped by worker processes); False: it does not read this one (read here)
SourceReader = Callable[[ConvertRun, Source], bool]


def convert_otlp(
    paths: Sequence[str],
    write: Callable[[bytes], Any],
    *,
    project: str | None = None,
    strict: bool = False,
    on_diagnostic: Callable[[Diagnostic], None] | None = None,
    reader: SourceReader | None = None,
) -> OtelConvertReport:
    """Convert the spans of `paths`, handing each call (JSON + "\\n") to `write`, in the
    inputs' order; `reader` reads the sources it takes (it counts their records)."""
    check_project(project)
    files = expand_paths(paths)
    if not files:
        raise UsageError("no trace files found in the given paths (.jsonl, .ndjson, .gz)")
    report = OtelConvertReport(files=len(files))
    run = ConvertRun(report, write, project, strict, on_diagnostic)
    sources = [Source.open(p) for p in files]
    for source in sources:
        if reader is not None and reader(run, source):
            continue
        for item in read_spans([source]):
            if isinstance(item, Unread):
                report.spans += item.spans
                run.left_out(item.diagnostic, item.spans)
                continue
            report.spans += 1
            run.span(item)
    for d in run.ledger.missing_parents():
        run.note(d)
    report.lines = sum(s.records for s in sources)
    return report
