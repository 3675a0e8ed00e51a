"""Diagnostics and run summaries as text, JSON or GitHub annotations.

Generic on purpose: `validate` and `upload` both report a list of `Diagnostic` plus a few
counts, and both must print them the same way in each format:

- text: `path:line: severity: field: message`, one per line, then a one-line summary;
- json: one object, the counts and `diagnostics` (`path, line, field, code, severity,
  message`), for `jq` and CI tools;
- github: `::error file=…,line=…,title=…::message` workflow commands, which GitHub
  Actions turns into annotations on the pull request, then the summary line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from tracecli.cli.safe import safe_text
from tracecli.diagnostics import Diagnostic


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# GitHub workflow commands (actions/toolkit core/src/command.ts): data escapes %, CR, LF;
# property values also escape ':' and ',', which would end the value.
def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    # a log viewer acts on ANSI escapes too: the parts from the file are made safe first
    props = [f"file={escape_property(safe_text(d.path))}"]
    if d.line > 0:
        props.append(f"line={d.line}")
    props.append(f"title={escape_property(safe_text(d.field or d.code))}")
    message = escape_data(safe_text(d.message, keep_line_breaks=True))
    return f"::{d.severity.value} {','.join(props)}::{message}"


def text_line(d: Diagnostic) -> str:
    # one problem, one line: a newline (a YAML excerpt) or a control character from the
    # file is shown escaped
    return safe_text(d.one_line())


def render(
    fmt: ReportFormat | str,
    diagnostics: Iterable[Diagnostic],
    counts: Mapping[str, Any],
    summary: str,
) -> str:
    """The whole report in `fmt`, ending with a newline.

    `counts`: the JSON object's other keys (`ok`, `files`, ...), in order, before its
    `diagnostics`; `summary`: the closing line of the text and github formats.
    """
    fmt = ReportFormat(fmt)
    if fmt is ReportFormat.json:
        import orjson  # --help builds the commands that import this module, and needs none

        doc = dict(counts)
        doc["diagnostics"] = [d.to_dict() for d in diagnostics]
        try:
            return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
        except TypeError:
            # a file name that is not UTF-8 (lone surrogates, which orjson refuses): the
            # standard encoder writes them as \udcXX escapes, as upload's report does
            import json

            return json.dumps(doc, indent=2) + "\n"
    line = github_line if fmt is ReportFormat.github else text_line
    out = [line(d) for d in diagnostics]
    out.append(summary)
    return "\n".join(out) + "\n"
