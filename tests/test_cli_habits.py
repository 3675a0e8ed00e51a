"""What a person types and reads, beyond the screen: trace text made safe at one seam
(`tracecli.cli.safe`), usage errors in one line, help that looks finished, the habits of
the shell (`-f`, `-h`, id fragments), a dry run that says it is one, a CI log that sees a
long upload alive, and Ctrl-C in convert. Servers are real, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.support.faultproxy import FaultProxy, Faults
from tests.support.servers import make_call, start_serve, start_weave_ref, weave_ref_python
from tests.support.uploadkit import cli_env, gen_calls, run_cli, tracecli, write_flat
from tracecli.cli import COMMANDS, app
from tracecli.cli.progress import fields, fit, plain_line, progress_line
from tracecli.cli.safe import safe_json, safe_json_bytes, safe_text
from tracecli.readback.rows import exception_line
from tracecli.readback.tail import and_more
from tracecli.readback.tail_ids import matching_ids
from tracecli.store.db import Store
from tracecli.upload.api import Progress

runner = CliRunner()
PROJECT = "acme/habits"
KEY = "habits-test-key"

# -- the seam: safe_text / safe_json ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcode, 漢字 and emoji 🙂", "plain text, ünïcode, 漢字 and emoji 🙂"),
        ("[bold red]X[/bold red] [link=x]y[/link]", "[bold red]X[/bold red] [link=x]y[/link]"),
        ("a\x1b[31mred\x1b[0m", "a\\x1b[31mred\\x1b[0m"),
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),  # OSC 52: a clipboard write
        ("\x1b]0;title\x1b\\", "\\x1b]0;title\\x1b\\"),  # set-title, ended by ST
        ("one\ntwo\r\nthree\tfour", "one\\ntwo\\r\\nthree\\tfour"),
        ("\x9b2J\x85\x7f", "\\x9b2J\\x85\\x7f"),  # C1 CSI, NEL, DEL
        ("abc\u202edcba\u2066x\u2069\u200f", "abc\\u202edcba\\u2066x\\u2069\\u200f"),  # bidi
        ("line\u2028sep", "line\\u2028sep"),
        ("bad\udcffbyte", "bad\\udcffbyte"),  # a lone surrogate cannot even be encoded
        ("\x00\x08", "\\x00\\x08"),
    ],
)
def test_safe_text_shows_every_control_escaped_and_nothing_else_changed(
    raw: str, shown: str
) -> None:
    assert safe_text(raw) == shown
    shown.encode("utf-8")  # printable on any UTF-8 terminal


def test_safe_text_keep_line_breaks_and_non_strings() -> None:
    assert safe_text("a\r\nb\x1b", keep_line_breaks=True) == "a\r\nb\\x1b"
    assert safe_text(42) == "42"
    assert safe_text(Path("x\x1by")) == "x\\x1by"


def test_safe_json_is_the_same_json_with_nothing_a_terminal_acts_on() -> None:
    value = {"op": "x\x1b[31m\u009b2J\u202e\x7f\u2028 é 漢", "n": [1, "\u200e"]}
    for text in (json.dumps(value, ensure_ascii=False), orjson.dumps(value).decode()):
        safe = safe_json(text)
        assert json.loads(safe) == value
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202e\u2028\u200e]", safe)
        assert safe_json_bytes(text.encode()) == safe.encode()
    assert safe_json('{"a": "plain"}') == '{"a": "plain"}'


# -- usage errors: one line, exit 2 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["upload", "--mode", "x", "a.jsonl"], "--mode: 'x' is not one of 'auto', 'complete'"),
        (["upload", "--target", "nope", "a"], "--target: 'nope' is not one of 'weave'"),
        (["convert", "--to", "otel", "x.jsonl"], "--to: 'otel' is not one of 'freeplay', 'weave'"),
        (["tail", "-n", "x"], "-n/--limit: expected a whole number"),
        (["upload"], "missing PATH"),
        (["validate"], "missing PATH"),
        (["upload", "--bogus", "a"], "no such option: --bogus"),
        (["bogus"], "no such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], expected: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith("tracecli: error: "), line
    assert expected in line, line
    assert "Value error" not in line and "Usage:" not in line and "Input should be" not in line
    assert line.endswith("--help)"), line  # where to read more


# -- help -----------------------------------------------------------------------------------


def _helps() -> dict[str, str]:
    out = {"": runner.invoke(app, ["-h"]).stdout}
    for name in COMMANDS:
        out[name] = runner.invoke(app, [name, "--help"]).stdout
    out["config show"] = runner.invoke(app, ["config", "show", "-h"]).stdout
    return out


def test_h_is_help_everywhere() -> None:
    for name in [*COMMANDS, "config show"]:
        r = runner.invoke(app, [*name.split(), "-h"])
        assert r.exit_code == 0, (name, r.output)
        assert r.stdout.startswith(f"Usage: tracecli {name}"), r.stdout[:80]


def test_the_exit_codes_every_command_shares_read_the_same() -> None:
    """Each command's docstring writes its exit codes out (it is the help page as shown);
    the codes several commands share must keep one wording."""
    usage = "2    usage or configuration error (bad option or setting, no key, no server)"
    for name, text in _helps().items():
        if name in ("", "config", "serve", "login", "config show"):  # no usage line of theirs
            continue
        codes = text.split("Exit codes:\n")[1]
        assert usage in codes, (name, codes)


def test_help_looks_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for name, text in _helps().items():
        long = [line for line in text.splitlines() if len(line) > 80]
        assert not long, f"`tracecli {name} --help` is wider than 80 columns: {long}"
        for leak in ("<str>", "list[", "{paths}", "<int", "<float", "paths...", "<path>"):
            assert leak not in text, f"`tracecli {name} --help` shows {leak!r}"
        if name not in ("", "config", "serve"):  # serve's help is the server side's
            assert "Examples:" in text and "Exit codes:" in text, name
    helps = _helps()
    assert "Usage: tracecli upload [OPTIONS] PATH..." in helps["upload"]
    assert ".yml" in helps["upload"] and ".yml" in helps["convert"]
    assert "--target <weave|local|freeplay>" in helps["upload"]
    assert "130" in helps["upload"] and "resume" in helps["upload"]
    assert "embedded store" not in helps["login"].split("--server")[1].split("\n  -")[0]
    commands = helps[""].split("Commands:\n")[1].split("\n\n")[0]
    listed = [ln.split()[0] for ln in commands.splitlines() if ln[2:3] not in ("", " ")]
    assert listed == [
        "validate",
        "upload",
        "tail",
        "serve",
        "convert",
        "export",
        "login",
        "config",
        "schema",
    ]


def test_shell_completion_offers_the_choices_of_target() -> None:
    words = "tracecli upload --target "
    proc = subprocess.run(
        tracecli(),
        env=cli_env(_TRACECLI_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD="3"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == {"weave", "local", "freeplay"}, proc.stdout


# -- tail: what a row shows, ids, lists ------------------------------------------------------


def test_exception_column_shows_the_exception_not_the_traceback_head() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in <module>\n'
        "    run()\n"
        "openai.RateLimitError: Error code: 429\n"
        "  more detail\n"
    )
    assert exception_line(tb) == "openai.RateLimitError: Error code: 429"
    assert exception_line('{"type": "ValueError", "message": "boom"}') == "ValueError: boom"
    assert exception_line("KeyError: 'x'\nsecond") == "KeyError: 'x'"
    assert exception_line("") == ""


def test_a_list_cut_to_ten_says_how_many_more() -> None:
    items = [f"p{i}" for i in range(13)]
    assert and_more(items) == "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 and 3 more"
    assert and_more(items[:3]) == "p0, p1, p2"
    assert matching_ids(["abc123", "123abc", "zzz", "abc123"], "abc") == ["abc123", "123abc"]


def _store_with(tmp_path: Path, calls: list[dict]) -> Path:
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.calls_complete(calls)
    return db


def test_unknown_project_lists_ten_and_says_how_many_more(tmp_path: Path) -> None:
    db = _store_with(tmp_path, [make_call(f"team/p{i:02d}", at=i) for i in range(13)])
    r = runner.invoke(app, ["tail", "--db", str(db), "-p", "team/nope"])
    assert r.exit_code == 2
    assert re.search(r"\(projects there: (team/p\d\d, ){9}team/p\d\d and 3 more\)", r.stderr)


@pytest.fixture(scope="module", params=["serve", pytest.param("weave-ref", marks=pytest.mark.slow)])
def id_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """`tracecli serve`, and weave's own server (the judge), holding calls whose ids share
    a start (as time-ordered ids do); yields (server, the calls, tail's server options)."""
    directory = tmp_path_factory.mktemp("ids")
    if request.param == "serve":
        handle = start_serve(directory)
        options = ["--server", handle.url]
    else:
        weave_ref_python()  # or skip, naming what is missing
        handle = start_weave_ref(directory, api_key=KEY)
        options = ["--server", handle.url, "--api-key", KEY]
    shared = "0192f0a1-7c3e-7000-8000-"
    calls = [
        make_call(PROJECT, op="first", at=1, call_id=shared + "00000000aaaa"),
        make_call(PROJECT, op="second", at=2, call_id=shared + "00000000bbbb"),
        make_call(PROJECT, op="third", at=3, call_id=str(uuid.uuid4())),
    ]
    calls[0]["trace_id"] = "4e0f6c4b7d1b4f5a8c6d8b9e0f1a2b34"
    with handle.client() as client:
        r = client.post(f"/v2/{PROJECT}/calls/complete", json={"batch": calls})
        assert r.status_code == 200, r.text
    try:
        yield handle, calls, options
    finally:
        handle.stop()


@pytest.mark.slow
def test_tail_id_takes_what_the_table_shows(id_server) -> None:
    _handle, calls, options = id_server
    base = ["tail", *options, "-p", PROJECT]
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    shown = [row.split()[-1] for row in table.stdout.splitlines()[1:]]  # the id column
    assert shown == [c["id"][-8:] for c in calls]
    for fragment, expected in (
        (calls[1]["id"][-8:], "second"),  # the suffix, as shown
        (calls[2]["id"][:8], "third"),  # a prefix
        (calls[0]["id"], "first"),  # the whole id
    ):
        r = runner.invoke(app, [*base, "--id", fragment, "--format", "json"])
        assert r.exit_code == 0, r.output
        assert [orjson.loads(x)["op_name"] for x in r.stdout.splitlines()] == [expected]


def test_tail_id_that_matches_nothing_or_several_says_so(id_server) -> None:
    _handle, calls, options = id_server
    base = ["tail", *options, "-p", PROJECT]
    none = runner.invoke(app, [*base, "--id", "deadbeef"])
    assert none.exit_code == 2
    assert "tracecli: error: --id deadbeef: no call id in acme/habits starts or ends with it" in (
        none.stderr
    )
    both = runner.invoke(app, [*base, "--id", "0192f0a1"])
    assert both.exit_code == 2
    assert "2 call ids in acme/habits start or end with it" in both.stderr
    assert calls[0]["id"] in both.stderr and "give more characters" in both.stderr
    trace = runner.invoke(app, [*base, "--trace", "0f1a2b34", "--format", "json"])
    assert trace.exit_code == 0, trace.output
    assert [orjson.loads(x)["op_name"] for x in trace.stdout.splitlines()] == ["first"]


def _read_until(stream: Any, needle: str, seconds: float) -> str:
    """What `stream` (a child's pipe) says until it holds `needle`, or `seconds` pass; read
    from the file descriptor (a buffered reader would hide lines from select)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while needle.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream.fileno()], [], [], 0.2)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_tail_f_follows_and_waits_for_a_new_project(tmp_path: Path) -> None:
    """`-f` is --follow (as `tail -f`); a project with no calls is waited for, not exit 2."""
    db = _store_with(tmp_path, [make_call("team/other")])
    proc = subprocess.Popen(
        [*tracecli("tail", "-f", "--db", str(db), "-p", PROJECT, "--interval", "0.2")],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        err = _read_until(proc.stderr, "waiting for the first ones", 60)
        assert "no calls in acme/habits yet; waiting for the first ones" in err, err
        assert proc.poll() is None
        with Store(db) as store:
            store.calls_complete([make_call(PROJECT, op="arrived")])
        out = _read_until(proc.stdout, "arrived", 60)
        proc.send_signal(signal.SIGINT)
        rest, more = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + more
    assert "arrived" in out + rest


# -- trace text everywhere tracecli prints ---------------------------------------------------

HOSTILE = "\x1b]52;c;aGk=\x07\x1b[31m[/div][error]\u202e"


def _no_raw_controls(text: str) -> None:
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), repr(text)


@pytest.mark.slow
def test_validate_and_upload_diagnostics_show_file_names_and_text_literally(
    tmp_path: Path,
) -> None:
    name = "evil\x1b[2J[div].jsonl"
    (tmp_path / name).write_text('{"type": "start", "project_id": "team/app"}\n')
    for args in (["validate", name], ["upload", name, "--db", str(tmp_path / "t.db")]):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        _no_raw_controls(r.stdout + r.stderr)
        assert "evil\\x1b[2J[div].jsonl:1: error:" in r.stdout + r.stderr
        assert "Traceback" not in r.stderr
    gh = run_cli("validate", name, "--format", "github", cwd=tmp_path)
    _no_raw_controls(gh.stdout)
    assert "file=evil\\x1b[2J[div].jsonl" in gh.stdout


def test_config_show_prints_settings_literally(tmp_path: Path) -> None:
    (tmp_path / "tracecli.yaml").write_text(
        json.dumps({"project": f"acme/p{HOSTILE}", "server": "http://127.0.0.1:1"})
    )
    r = run_cli("config", "show", cwd=tmp_path)
    _no_raw_controls(r.stdout + r.stderr)
    assert "acme/p\\x1b]52;c;aGk=\\x07\\x1b[31m[/div][error]\\u202e" in r.stdout + r.stderr


@pytest.mark.slow
def test_a_servers_error_message_is_shown_literally(tmp_path: Path) -> None:
    """A server refuses a request with a reason full of escapes: the upload's error lines
    and the rejected-records note show it escaped, never acted on."""
    calls = gen_calls(3, seed=9, project=PROJECT)
    trace = write_flat(tmp_path / "t.jsonl", calls)
    handle = start_serve(tmp_path / "serve")
    try:
        refuse = {calls[0][0]["id"]: (400, f"refused: {HOSTILE} [bold]no[/bold]")}
        with FaultProxy(handle.url, Faults(refuse=refuse)) as proxy:
            r = run_cli("upload", str(trace), "--server", proxy.url, cwd=tmp_path)
    finally:
        handle.stop()
    assert r.returncode == 1, r.stderr
    _no_raw_controls(r.stdout + r.stderr)
    assert "\\x1b]52;c;aGk=\\x07" in r.stderr and "[bold]no[/bold]" in r.stderr, r.stderr


def test_convert_writes_records_that_a_terminal_cannot_act_on(tmp_path: Path) -> None:
    call = make_call(PROJECT, op=f"llm{HOSTILE}")
    (tmp_path / "in.jsonl").write_text(json.dumps({"type": "call", **call}) + "\n")
    r = run_cli("convert", "in.jsonl", "--to", "freeplay", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    _no_raw_controls(r.stdout + r.stderr)
    assert "\\u202e" in r.stdout or "\\u202e" in r.stderr


# -- upload: dry run, progress off a terminal -----------------------------------------------


def test_dry_run_json_counts_what_would_be_sent(tmp_path: Path) -> None:
    r = run_cli(
        "upload", str(ROOT / "samples" / "weave"), "--dry-run", "--format", "json", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True
    assert doc["would_upload"] == 44 and doc["would_send_bytes"] > 0
    assert "uploaded" not in doc and "bytes_sent" not in doc and "requests" not in doc


def test_progress_line_fits_and_drops_the_least_useful_first() -> None:
    p = Progress(
        bytes_read=12_345_678,
        bytes_total=98_765_432,
        records=200_000,
        uploaded=187_990,
        rejected=3,
        skipped=0,
        retries=32,
        elapsed=83.2,
    )
    for width in (40, 60, 80, 100, 120, 160, 200):
        line = progress_line(p, width)
        assert len(line) < width, (width, line)
        assert line.lstrip().startswith("12%") and "1:23 elapsed" in line, line
        assert "187,990 calls sent" in line
    assert "ETA" in progress_line(p, 80) and "MB" not in progress_line(p, 60)
    assert "█" in progress_line(p, 200) and "█" not in progress_line(p, 80)
    assert "3 rejected" in progress_line(p, 60)
    assert plain_line(p).startswith("tracecli: progress: 12%, 12.3/98.8 MB, 200,000 records")
    assert fit(fields(p), 2) == "1…"  # never longer than asked


def test_progress_line_has_a_place_for_the_senders_status() -> None:
    """The core may add a status (an unreachable server, the next retry): it replaces the
    rate and the ETA, and stays when the line is cut."""
    p = Progress(
        bytes_read=10, bytes_total=100, records=5, uploaded=4, rejected=0, skipped=0,
        retries=5, elapsed=30.0,
    )  # fmt: skip
    object.__setattr__(p, "status", "server unreachable (connection refused); retry 5 in 8 s")
    line = progress_line(p, 80)
    assert "server unreachable (connection refused); retry 5 in 8 s" in line, line
    assert "ETA" not in line and "calls/s" not in line
    assert len(line) < 80 and "0:30 elapsed" in line


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_without_a_terminal_a_long_upload_prints_a_plain_progress_line(tmp_path: Path) -> None:
    """A CI log: plain `tracecli: progress: ...` lines on stderr while a slow upload runs
    (TRACECLI_PROGRESS_EVERY shortens the 15 s for the test); none with --quiet."""
    trace = write_flat(tmp_path / "t.jsonl", gen_calls(400, seed=3, project=PROJECT))
    handle = start_serve(tmp_path / "serve")
    try:
        with FaultProxy(handle.url, Faults(latency=0.25)) as proxy:
            args = ["upload", str(trace), "--server", proxy.url, "--chunk-size", "20"]
            args += ["--concurrency", "1"]
            loud = run_cli(*args, "--restart", cwd=tmp_path, TRACECLI_PROGRESS_EVERY="0.5")
            quiet = run_cli(*args, "--restart", "-q", cwd=tmp_path, TRACECLI_PROGRESS_EVERY="0.5")
    finally:
        handle.stop()
    assert loud.returncode == 0 and quiet.returncode == 0, loud.stderr + quiet.stderr
    progress = [ln for ln in loud.stderr.splitlines() if ln.startswith("tracecli: progress: ")]
    assert len(progress) >= 2, loud.stderr
    assert all("calls sent" in ln and "elapsed" in ln and "%" in ln for ln in progress)
    assert "\x1b" not in loud.stderr and "\r" not in loud.stderr  # a log, not a live display
    assert "progress" not in quiet.stderr


# -- convert: Ctrl-C ---------------------------------------------------------------------------


def test_interrupted_convert_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        tracecli("convert", "-", "--to", "freeplay", "-o", str(tmp_path / "out.jsonl")),
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        call = make_call(PROJECT)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"type": "call", **call}) + "\n")
        proc.stdin.flush()
        # converting: its temporary output file exists (stdin stays open)
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.jsonl.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(tmp_path.glob(".out.jsonl.*.tmp")), "convert did not start"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"tracecli: interrupted; {tmp_path / 'out.jsonl'} was not written"
    ]
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_op_and_exception_share_the_width_by_what_the_first_table_needs() -> None:
    """A table of successes shows op names whole at 80 columns; a table of errors gives
    the exception the room; following keeps the even split (the rows to come are unknown)."""
    import io

    from rich.console import Console

    from tracecli.cli.cmd_tail import layout, render_rows

    ok = make_call(PROJECT, op="openai.chat.completions.create")
    bad = make_call(PROJECT, op="tool", exception="TimeoutError: upstream")
    console = Console(width=80, file=io.StringIO(), color_system=None)
    assert "openai.chat.completions.create" in render_rows(console, [ok], header=True)
    assert "TimeoutError: upstream" in render_rows(console, [bad], header=True)
    even = layout(80)
    assert even.widths[1] == even.widths[-1]  # op and exception, half each
    for table in (render_rows(console, [ok, bad], header=True),):
        assert all(len(line) <= 80 for line in table.splitlines())
