"""`convert`: write the records an upload to another backend would send, without sending.

`tracecli convert PATH... --to freeplay` reads trace files of any shape, converts Weave calls
(paired across files) into Freeplay completions and traces, passes Freeplay records through,
checks every result with the Freeplay rules, and writes one JSON record per line: exactly
what `tracecli upload --target freeplay` would send, in a form it accepts back. Records that
cannot be converted are reported (file, line, field) and left out; the exit code says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tracecli.check.pairing import DEFAULT_MEMORY_BUDGET
from tracecli.diagnostics import Diagnostic, UsageError
from tracecli.freeplay.stream import FreeplayPieces
from tracecli.inputs.reader import InputFormat, Source, expand_paths
from tracecli.journal.rejected import skip_rejected_file
from tracecli.upload.findings import Findings
from tracecli.wire.encode import dumps

Backend = Literal["freeplay"]
BACKENDS: tuple[str, ...] = ("freeplay",)


@dataclass
class ConvertReport(Findings):
    to: str
    files: int = 0
    records: int = 0  # input records read
    written: int = 0  # output records
    completions: int = 0
    traces: int = 0
    converted_calls: int = 0  # Weave calls turned into Freeplay records
    passed_through: int = 0  # Freeplay records copied as they were
    not_converted: int = 0  # input records left out (invalid, unpaired)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or self.not_converted else 0

    def to_dict(self) -> dict[str, Any]:
        return self.fields_dict(
            "to files records written completions traces converted_calls passed_through "
            "not_converted errors warnings diagnostics"
        )


MAX_DIAGNOSTICS = 200


def convert(
    paths: Sequence[str],
    write: Callable[[bytes], Any],
    *,
    to: str = "freeplay",
    input_format: InputFormat = "jsonl",
    strict: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    on_diagnostic: Callable[[Diagnostic], None] | None = None,
) -> ConvertReport:
    """Convert the records of `paths`, handing each output line (JSON + "\\n") to `write`."""
    if to not in BACKENDS:
        raise UsageError(f"--to must be one of {', '.join(BACKENDS)}, got {to!r}")
    # the same inputs as `upload` reads: not last upload's rejected file brought in by a
    # directory (its records are in the inputs already)
    files = skip_rejected_file(paths, expand_paths(paths), None)
    if not files:
        raise UsageError("no trace files found in the given paths (.jsonl, .ndjson, .yaml)")
    if files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    report = ConvertReport(to=to, files=len(files))
    sources = [Source.open(p, input_format) for p in files]
    pieces = FreeplayPieces(sources, memory_budget=memory_budget, strict=strict)
    for piece in pieces:
        for d in piece.diagnostics:
            if d.is_error:
                report.errors += 1
            else:
                report.warnings += 1
            if len(report.diagnostics) < MAX_DIAGNOSTICS:
                report.diagnostics.append(d)
            if on_diagnostic is not None:
                on_diagnostic(d)
        if piece.record is None:
            report.not_converted += len(piece.lines)
            continue
        write(dumps(piece.record) + b"\n")  # wide integers with their own digits
        report.written += 1
        if piece.is_trace:
            report.traces += 1
        else:
            report.completions += 1
        if piece.converted:
            report.converted_calls += 1
        else:
            report.passed_through += 1
    report.records = sum(s.records for s in sources)
    return report
