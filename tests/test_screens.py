"""What a person sees in a real terminal: tracecli on a pseudo-TTY of 80 and 120 columns,
its screen drawn by a terminal emulator (pyte) and read back.

- the upload progress line stays on one row (an upload slowed by the fault proxy in front
  of `tracecli serve`, so the line is on screen long enough to be read), with percent done
  and elapsed time;
- the tail table has no wrapped row and gives its width to op and exception;
- hostile trace text (Rich markup, ANSI/OSC escapes, C1 controls, bidi overrides, newlines)
  is drawn literally, and no escape byte of it reaches the terminal: the raw bytes are
  checked too, not only the screen.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, Faults
from tests.support.ptyscreen import pty_env, run_on_pty
from tests.support.servers import make_call, start_serve
from tests.support.uploadkit import gen_calls, run_cli, write_flat
from tracecli.store.db import Store

pytestmark = pytest.mark.slow  # terminal sessions against a server: out of the fast loop

PROJECT = "acme/screens"

# What an LLM (or whoever feeds it) can put in a trace: Rich markup, an OSC 52 clipboard
# write, a set-title, SGR colour, a C1 CSI, a bidi override, a line break.
OSC52 = "\x1b]52;c;aGFja2Vk\x07"
TITLE = "\x1b]0;pwned\x1b\\"
HOSTILE_OP = "[bold red]X[/bold red] [link=https://evil.example]click[/link]\nrow2"
HOSTILE_EXC = (
    "Traceback (most recent call last):\n"
    '  File "agent.py", line 3, in run\n'
    f"ValueError: unexpected closing tag [/div] in model output {OSC52}{TITLE}"
    "\x1b[31mred\x1b[0m \x9b2J \u202eevil"
)
KEYERROR = "KeyError: [error] missing field"

# Escape sequences Rich itself may write (SGR styles, cursor show/hide, line erase, cursor
# moves of the live display); anything else that starts with ESC came from the data.
OURS = re.compile(rb"\x1b\[[0-9;?]*[mlhKAGBCDJ]")


def hostile_store(path: Path) -> Path:
    calls = [
        make_call(PROJECT, op=HOSTILE_OP, at=1, exception=HOSTILE_EXC),
        make_call(PROJECT, op="tool.lookup", at=2, exception=KEYERROR),
        make_call(PROJECT, op="openai.chat.completions.create", at=3, tokens=(812, 95)),
    ]
    with Store(path) as store:
        store.calls_complete(calls)
    return path


def assert_no_foreign_escapes(raw: bytes) -> None:
    leftover = OURS.sub(b"", raw)
    assert b"\x1b" not in leftover, leftover[max(0, leftover.find(b"\x1b") - 40) :][:120]
    assert b"\x07" not in leftover  # the BEL that ends an OSC
    assert not re.search(rb"\xc2[\x80-\x9f]", raw), "a C1 control reached the terminal"
    assert "\u202e".encode() not in raw, "a bidi override reached the terminal"


@pytest.mark.parametrize("cols", [80, 120])
def test_tail_table_fits_and_shows_hostile_text_literally(tmp_path: Path, cols: int) -> None:
    db = hostile_store(tmp_path / "t.db")
    run = run_on_pty(["tail", "--db", str(db), "-p", PROJECT], cols=cols, cwd=tmp_path)
    assert run.code == 0, run.text()
    rows = [r for r in run.screen if r]
    header, *body = rows
    assert header.startswith("started") and header.endswith("exception"), rows
    assert len(body) == 3, rows  # one row per call: a newline in the op split none
    assert all(len(row) <= cols for row in rows)
    # every row starts with the time: none is the wrapped rest of another
    assert all(re.match(r"(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d ", r) for r in body), rows
    hostile, keyerror, llm = body
    assert "[bold red]X" in hostile  # markup shown, not applied
    assert "ValueError: unex" in hostile  # the exception, not "Traceback (most ..."
    assert "Traceback" not in run.text()
    assert "[error]" in keyerror or "KeyError: [err" in keyerror
    assert "openai.chat.comp" in llm
    if cols >= 120:
        assert "openai.chat.completions.create" in llm and "907" in llm
    assert_no_foreign_escapes(run.raw)
    assert b"\x1b]8;" not in run.raw  # no hyperlink was made
    # the status is coloured on a terminal: errors red, successes green
    assert b"\x1b[1;31merror\x1b[0m" in run.raw and b"\x1b[32msuccess\x1b[0m" in run.raw
    plain = run_on_pty(
        ["tail", "--db", str(db), "-p", PROJECT], cols=cols, cwd=tmp_path, env=pty_env(NO_COLOR="1")
    )
    assert b"\x1b[32m" not in plain.raw and b"\x1b[1;31m" not in plain.raw


def test_hostile_text_is_shown_escaped_on_a_wide_terminal_and_in_a_pipe(tmp_path: Path) -> None:
    """Every hostile part is visible, escaped, the same on a terminal and in a pipe."""
    db = hostile_store(tmp_path / "t.db")
    args = ["tail", "--db", str(db), "-p", PROJECT]
    run = run_on_pty(args, cols=400, cwd=tmp_path)
    piped = run_cli(*args, COLUMNS="400")
    assert piped.returncode == 0, piped.stderr
    for screen in (run.text(), piped.stdout):
        assert "[bold red]X[/bold red] [link=https://ev" in screen
        assert "[/div] in model output \\x1b]52;c;aGFja2Vk\\x07\\x1b]0;pwned\\x1b\\" in screen
        assert "\\x1b[31mred\\x1b[0m \\x9b2J \\u202eevil" in screen
        assert "KeyError: [error] missing field" in screen
    assert_no_foreign_escapes(run.raw)
    assert_no_foreign_escapes(piped.stdout.encode())
    assert "\x1b" not in piped.stdout + piped.stderr
    # --format json: the same values for a parser, nothing a terminal acts on
    js = run_cli(*args, "--format", "json")
    assert js.returncode == 0, js.stderr
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202e]", js.stdout.replace("\n", ""))
    exceptions = {json.loads(line)["exception"] for line in js.stdout.splitlines()}
    assert HOSTILE_EXC in exceptions


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
@pytest.mark.parametrize("cols", [80, 120])
def test_upload_progress_line_stays_on_one_row(tmp_path: Path, cols: int) -> None:
    """A slow server (0.15 s a request, one request at a time, 25 records each): the live
    line is on screen for seconds, and every frame of it is one row with percent done,
    calls sent and elapsed time."""
    trace = write_flat(tmp_path / "big.jsonl", gen_calls(600, seed=5, project=PROJECT))
    serve = start_serve(tmp_path / "serve")
    try:
        with FaultProxy(serve.url, Faults(latency=0.15)) as proxy:
            run = run_on_pty(
                [
                    "upload",
                    str(trace),
                    "--server",
                    proxy.url,
                    "--chunk-size",
                    "25",
                    "--concurrency",
                    "1",
                ],
                cols=cols,
                cwd=tmp_path,
                timeout=150,
                watch=lambda screen: any("calls sent" in r for r in screen),
            )
    finally:
        serve.stop()
    assert run.code == 0, run.text()
    assert len(run.frames) >= 3, f"the progress line was seen {len(run.frames)} times"
    for frame in run.frames:
        (at,) = [i for i, r in enumerate(frame) if "calls sent" in r]
        line = frame[at]
        assert len(line) < cols
        assert re.match(r"^\s*\d+%", line), line  # percent done first
        assert re.search(r"\d+:\d\d elapsed", line), line  # and the elapsed time on it
        nxt = frame[at + 1] if at + 1 < len(frame) else ""
        assert nxt == "", f"the line continues on the next row: {nxt!r}"
    # the live line is gone at the end; the summary is there
    assert not any("calls sent" in r for r in run.screen)
    assert any(r.startswith("calls uploaded") for r in run.screen), run.text()
    assert_no_foreign_escapes(run.raw)


def test_tail_follow_waits_for_the_first_calls_and_prints_them_safely(tmp_path: Path) -> None:
    """`tail -f` on a project with no calls yet waits (no exit 2); calls that arrive are
    printed, hostile text literally; Ctrl-C ends it with 0."""
    serve = start_serve(tmp_path / "serve")
    try:
        sent = {"done": False}

        def send_when_waiting(screen: list[str]) -> bool:
            if not sent["done"] and any("waiting for the first ones" in r for r in screen):
                sent["done"] = True
                with serve.client() as client:
                    call = make_call(PROJECT, op=HOSTILE_OP, at=5, exception=HOSTILE_EXC)
                    r = client.post(f"/v2/{PROJECT}/calls/complete", json={"batch": [call]})
                    assert r.status_code == 200, r.text
            return any("[bold red]X" in r for r in screen)

        run = run_on_pty(
            ["tail", "-f", "--server", serve.url, "-p", PROJECT, "--interval", "0.2"],
            cols=100,
            cwd=tmp_path,
            timeout=60,
            interrupt_when=send_when_waiting,
            env=pty_env(),
        )
    finally:
        serve.stop()
    assert sent["done"], run.text()
    assert run.code == 0, run.text()
    rows = [r for r in run.screen if "[bold red]X" in r]
    assert len(rows) == 1 and "ValueError: unexpect" in rows[0], run.text()
    assert_no_foreign_escapes(run.raw)


# -- docs/screens.md: what upload and tail look like at 80 columns, kept true --------------

SCREENS = Path(__file__).resolve().parent.parent / "docs" / "screens.md"
REGENERATE = "TRACECLI_REGENERATE_SCREENS"


def _normalised(rows: list[str]) -> list[str]:
    """Timings vary run to run: the summary's elapsed and calls/s values are written as
    fixed ones, right-aligned where they were (the table keeps its shape)."""
    out = []
    for row in rows:
        m = re.match(r"^(elapsed|calls/s)(\s+)(\S.*)$", row)
        if m:
            value = "45 ms" if m.group(1) == "elapsed" else "978"
            row = m.group(1) + value.rjust(len(m.group(2)) + len(m.group(3)))
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def _block(command: str, rows: list[str], cols: int) -> str:
    ruler = f"{'─' * (cols - 12)} {cols} columns"
    return "\n".join(["```text", ruler, f"$ {command}", *rows, "```"])


def build_screens(work: Path) -> str:
    """docs/screens.md: real runs on an 80-column pseudo-terminal, in a copy of samples/
    (the screen as a terminal emulator drew it), plus the progress line drawn from a fixed
    progress record (a live one changes every quarter second)."""
    import shutil

    from tracecli.cli.progress import progress_line
    from tracecli.upload.api import Progress

    shutil.copytree(Path(__file__).resolve().parent.parent / "samples", work / "samples")
    env = pty_env(NO_COLOR="1", HOME=str(work / "home"))
    parts = [
        "# What tracecli looks like at 80 columns",
        "",
        "<!-- Generated by tests/test_screens.py::test_screens_doc_is_what_tracecli_draws;",
        f"     regenerate with {REGENERATE}=1. Do not edit by hand. -->",
        "",
        "Captured from a pseudo-terminal 80 columns wide, as a terminal emulator drew the",
        "screen (timings in the summary are fixed so the page does not change every run).",
        "Tables and the progress line fit the terminal: narrower terminals drop the date,",
        "then duration and tokens; wider ones show them all (see",
        "[serve-and-tail.md](serve-and-tail.md) and [upload.md](upload.md)).",
        "",
        "## upload",
        "",
    ]
    upload = ["upload", "samples/weave", "--db", "traces.db"]
    run = run_on_pty(upload, cols=80, cwd=work, env=env)
    assert run.code == 0, run.text()
    parts += [_block("tracecli " + " ".join(upload), _normalised(run.screen), 80), ""]
    parts += [
        "While it runs, one line at the bottom of the screen says how far it is (here a",
        "large upload, 12% done); a narrower terminal keeps the percent, the calls sent and",
        "the elapsed time and drops the rest; a server that stops answering is named on it:",
        "",
    ]
    p = Progress(
        bytes_read=123_456_789, bytes_total=1_002_003_004, records=412_000, uploaded=205_871,
        rejected=0, skipped=0, retries=2, elapsed=95.0,
    )  # fmt: skip
    down = Progress(**{**p.__dict__, "retries": 9})
    object.__setattr__(down, "status", "server unreachable (connection refused); retry 5 in 8 s")
    lines = [progress_line(p, 80), progress_line(p, 60), progress_line(down, 80)]
    parts += ["```text", *lines, "```", "", "## tail", ""]
    for args in (["tail", "--db", "traces.db", "-n", "8"], ["tail", "--db", "traces.db",
                 "-p", "acme/agents", "--errors"]):  # fmt: skip
        run = run_on_pty(args, cols=80, cwd=work, env=env)
        assert run.code == 0, run.text()
        parts += [_block("tracecli " + " ".join(args), _normalised(run.screen), 80), ""]
    parts += [
        "At 60 columns duration and tokens go too:",
        "",
    ]
    args = ["tail", "--db", "traces.db", "-p", "acme/agents", "-n", "4"]
    run = run_on_pty(args, cols=60, cwd=work, env=env)
    assert run.code == 0, run.text()
    parts += [_block("tracecli " + " ".join(args), _normalised(run.screen), 60), ""]
    return "\n".join(parts)


def test_screens_doc_is_what_tracecli_draws(tmp_path: Path) -> None:
    import os

    now = build_screens(tmp_path)
    if os.environ.get(REGENERATE):
        SCREENS.write_text(now, encoding="utf-8")
    shown = SCREENS.read_text(encoding="utf-8") if SCREENS.exists() else ""
    assert shown == now, (
        f"docs/screens.md is not what tracecli draws now: run the test with {REGENERATE}=1 "
        "and look at the diff"
    )
    blocks = [b.split("```")[0] for b in now.split("```text")[1:]]
    assert all(len(line) <= 80 for b in blocks for line in b.splitlines()), blocks
