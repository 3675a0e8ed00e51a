"""What a person and a CI job see, found by trying tracecli the way they do: settings files
with surprising YAML, hostile text on terminals and in logs."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support import freeplay_fixtures
from tests.support.freeplay_fixtures import RefServer
from tests.support.ptyscreen import AS_TRACECLI, drain, pty_env
from tests.support.servers import make_call
from tests.support.uploadkit import run_cli
from tracecli.store.db import Store

SECRET = "SEKRIT0123456789"

refserver_module = freeplay_fixtures.refserver_module
refserver = freeplay_fixtures.refserver


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        (f"api_key: !!int {SECRET}\n", "!!int"),
        (f"api_key: !!float {SECRET}\n", "!!float"),
        (f"api_key: !!bool {SECRET}\n", "!!bool"),
        ("chunk_size: !!timestamp 2026-13-45\n", "!!timestamp"),
        (f"profiles:\n  ci:\n    api_key: !!int {SECRET}\n", "!!int"),
        (f"credentials:\n  example.com: !!int {SECRET}\n", "!!int"),
    ],
)
def test_a_tagged_value_yaml_cannot_build_is_one_line_without_the_value(
    tmp_path: Path, text: str, tag: str
) -> None:
    """`!!int abc` in the user config made PyYAML raise a ValueError that no one caught: a
    traceback, ending with the value itself (`invalid literal for int(): 'SEKRIT...'`),
    an API key in a CI log."""
    config = Path.home() / ".config" / "tracecli" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    config.chmod(0o600)
    result = run_cli("config", "show", cwd=tmp_path)
    line = text.count("\n")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(
        f"tracecli: error: ~/.config/tracecli/config.yaml:{line}: YAML: "
    ), result.stderr
    assert tag in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("!!int abc", "invalid literal for int() with base 10: 'abc'"),
        ("!!bool maybe", "no boolean 'maybe'"),
        ("!!timestamp 2026-13-45", "month must be in 1..12"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "convert"])
def test_a_yaml_record_with_a_tag_it_cannot_be_is_an_error_at_its_line(
    tmp_path: Path, value: str, why: str, command: str
) -> None:
    """The same ValueError out of a YAML trace file was a traceback of validate, upload and
    convert; it is that record's error now, the run going on."""
    trace = tmp_path / "t.yaml"
    trace.write_text(
        "- type: start\n"
        "  project_id: acme/agents\n"
        "  id: 891e15d7-97f2-4a9c-a787-ff819c6b3a21\n"
        "  op_name: x\n"
        "  trace_id: 4ca67353-d824-444b-81c1-56cf264ca243\n"
        "  started_at: '2026-03-02T09:54:05.021995Z'\n"
        "  attributes: {}\n"
        f"  inputs: {{n: {value}}}\n"
    )
    args = [command, str(trace)] + (["--to", "freeplay"] if command == "convert" else [])
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = result.stdout if command == "validate" else result.stderr  # validate's is data
    assert (
        f"{trace}:1: error: (record): invalid YAML: a value is not what its tag says ({why})"
        in report.splitlines()
    ), result


def _set_size(fd: int, cols: int, rows: int = 30) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_tail_follow_lays_the_table_out_again_when_the_terminal_is_resized(
    tmp_path: Path,
) -> None:
    """`tail -f` fixed its columns for the first width: after the window was made narrower
    (SIGWINCH) each new row was cut at the new edge, its id (what --id takes) and exception
    gone. A new width now gets a new header and rows laid out for it."""
    db = tmp_path / "t.db"
    project = "acme/resize"
    with Store(db) as store:
        store.calls_complete([make_call(project, op="first.op", at=1)])
    late_ids = [f"00000000-0000-4000-8000-0000000000{n}{n}" for n in range(3)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a 100-column terminal, then `tracecli tail -f`
        try:
            _set_size(0, 100)
            argv = [sys.executable, "-c", AS_TRACECLI, "tail", "-f", "--db", str(db)]
            os.execvpe(
                sys.executable, [*argv, "-p", project, "--interval", "0.2"], pty_env(NO_COLOR="1")
            )
        finally:
            os._exit(127)
    _set_size(fd, 100)
    raw, mark, deadline = b"", -1, time.monotonic() + 60
    try:
        while time.monotonic() < deadline and b"late.op" not in raw[max(mark, 0) :]:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    raw += os.read(fd, 65536)
                except OSError:
                    break
            if mark < 0 and b"first.op" in raw:
                mark = len(raw)
                _set_size(fd, 50)  # the window is made narrower
                os.kill(pid, signal.SIGWINCH)
                time.sleep(0.5)
                with Store(db) as store:
                    calls = [
                        make_call(project, op="late.op", at=5 + i, call_id=cid, exception="E")
                        for i, cid in enumerate(late_ids)
                    ]
                    store.calls_complete(calls)
        time.sleep(0.5)
        os.kill(pid, signal.SIGINT)
        raw += drain(fd, 60, idle=2)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert mark > 0, raw.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0
    plain = re.sub(r"\x1b\[[0-9;]*m", "", raw[mark:].decode())  # bold stays with NO_COLOR
    after = [line for line in plain.splitlines() if line.strip()]
    rows = [line for line in after if "late.op" in line]
    assert len(rows) == 3, after
    assert after[0].startswith("started"), after  # a new header for the new width
    for line, cid in zip(rows, late_ids, strict=True):
        assert len(line) <= 50, line
        assert cid[-8:] in line, after  # the id column is kept


def _long_diagnostics_file(path: Path) -> Path:
    """Two records whose diagnostics are longer than 80 columns (an op name too long, and
    its end refused with it)."""
    import json

    cid, tid = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-0000000000f1"
    start = {
        "type": "start",
        "project_id": "acme/agents",
        "id": cid,
        "op_name": "x" * 300,
        "trace_id": tid,
        "parent_id": None,
        "started_at": "2026-03-02T09:14:00Z",
        "attributes": {},
        "inputs": {},
    }
    end = {
        "type": "end",
        "project_id": "acme/agents",
        "id": cid,
        "ended_at": "2026-03-02T09:14:01Z",
        "exception": None,
        "output": None,
        "summary": {},
    }
    path.write_text(json.dumps(start) + "\n" + json.dumps(end) + "\n")
    return path


def test_force_color_in_a_ci_log_colours_but_neither_wraps_nor_redraws(tmp_path: Path) -> None:
    """FORCE_COLOR=1 (set in many CI workflows for coloured logs) made Rich take the log for
    a terminal: each diagnostic was wrapped at 80 columns (a problem matcher or a grep for
    `file:line: error:` got half of it) and the live progress line's redraws (`\\r`,
    `ESC[2K`, a hidden cursor) filled the log. FORCE_COLOR asks for colour (force-color.org):
    the log gets coloured severities, one line per diagnostic and the plain progress lines."""
    trace = _long_diagnostics_file(tmp_path / "long.jsonl")
    result = run_cli(
        "upload",
        str(trace),
        "--db",
        str(tmp_path / "t.db"),
        cwd=tmp_path,
        FORCE_COLOR="1",
        NO_COLOR="",
        GITHUB_ACTIONS="true",
        TRACECLI_PROGRESS_EVERY="0",
    )
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "\x1b[1;31merror\x1b[0m" in err  # coloured, as asked
    assert "\r" not in err and "\x1b[2K" not in err and "\x1b[?25l" not in err, repr(err)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", err)
    lines = plain.splitlines()
    assert f"{trace}:1: error: op_name: is 300 characters; the server allows at most 128" in (
        lines
    ), plain
    assert (
        f"{trace}:2: error: (record): its start (line 1) was rejected; fix that one and "
        "upload the two together (both are in the rejected file)" in lines
    ), plain
    assert any(line.startswith("tracecli: progress: ") for line in lines), plain


def test_force_color_tail_in_a_pipe_keeps_whole_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tail` in a pipe prints 200-column rows (or $COLUMNS); with FORCE_COLOR it squeezed
    them into 80, as if the pipe were an 80-column terminal."""
    monkeypatch.delenv("COLUMNS", raising=False)
    db = tmp_path / "t.db"
    exception = "ValueError: " + "e" * 100
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op="op", at=1, exception=exception)])
    for env in ({}, {"FORCE_COLOR": "1", "NO_COLOR": ""}):
        result = run_cli("tail", "--db", str(db), cwd=tmp_path, **env)
        assert result.returncode == 0, result.stderr
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
        assert exception in plain, (env, plain)


URL_KEY = "SEKRIT0123456789"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_config_show_masks_a_key_in_the_server_url_and_counts_it(tmp_path: Path, fmt: str) -> None:
    """A key in the server URL (`https://api:KEY@host`, the W&B convention, which requests
    send) was printed whole by `config show`, and its api_key row said there was none."""
    url = f"https://api:{URL_KEY}@weave.example.com"
    result = run_cli("config", "show", "--server", url, "--format", fmt, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert URL_KEY not in result.stdout + result.stderr
    masked = "https://api:**********@weave.example.com"
    if fmt == "json":
        import json

        settings = json.loads(result.stdout)["settings"]
        assert settings["server"]["value"] == masked
        assert settings["api_key"] == {"value": "**********", "source": "the server URL"}
    else:
        rows = {
            line.split()[0]: line.split(None, 2)[1:] for line in result.stdout.splitlines()[:20]
        }
        assert rows["server"][0] == masked
        assert rows["api_key"] == ["**********", "the server URL"]


@pytest.mark.parametrize("command", ["tail", "export"])
def test_a_key_in_the_server_url_is_a_key_and_is_never_printed(
    tmp_path: Path, command: str
) -> None:
    """With the key only in the URL, `tail` and `export` refused with "no API key for
    https://api:KEY@host" — wrong (requests send that key) and the key in the error line."""
    url = f"https://api:{URL_KEY}@weave.example.invalid"
    result = run_cli(command, "--server", url, "-p", "acme/p", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert URL_KEY not in result.stdout + result.stderr
    assert "no API key" not in result.stderr, result.stderr
    assert "weave.example.invalid" in result.stderr  # it tried that server


def test_a_bad_server_url_is_named_without_its_key(tmp_path: Path) -> None:
    url = f"ftp://api:{URL_KEY}@weave.example.com"
    result = run_cli("config", "show", "--server", url, cwd=tmp_path)
    assert result.returncode == 2
    assert URL_KEY not in result.stdout + result.stderr
    assert "ftp://api:**********@weave.example.com" in result.stderr, result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "https://[zz"])
@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_server_url_python_cannot_split_is_a_usage_error(
    tmp_path: Path, url: str, where: str
) -> None:
    """A port that is no number or out of range, or a bracketed host that is no address,
    passed the URL check and then failed a request's set-up: a traceback (httpx.InvalidURL,
    `ValueError: Port out of range`)."""
    trace = _long_diagnostics_file(tmp_path / "t.jsonl")
    args = ["upload", str(trace), "-p", "acme/p"]
    env = {"WF_TRACE_SERVER_URL": url} if where == "env" else {}
    result = run_cli(*args, *(["--server", url] if where == "flag" else []), cwd=tmp_path, **env)
    name = "--server" if where == "flag" else "WF_TRACE_SERVER_URL"
    assert (result.returncode, result.stderr) == (
        2,
        f"tracecli: error: {name}: must be a URL like https://host[:port]; got {url!r}\n",
    )


# Invisible characters an LLM's text can carry: a zero-width space inside an op name makes
# `openai.chat` and `open<ZWSP>ai.chat` look the same; Unicode tag characters (U+E0000
# block) carry hidden ASCII ("ASCII smuggling" of prompt injections); a BOM, a word joiner.
INVISIBLE = {
    "\u200b": "\\u200b",
    "\u2060": "\\u2060",
    "\ufeff": "\\ufeff",
    "\U000e0041": "\\U000e0041",
}


def test_invisible_characters_show_escaped_in_tail_and_diagnostics(tmp_path: Path) -> None:
    from tests.support.ptyscreen import run_on_pty

    op = "open\u200bai.chat"
    exception = "Error: ok\u2060\ufeff\U000e0041\U000e0042"
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op=op, at=1, exception=exception)])
    run = run_on_pty(["tail", "--db", str(db)], cols=160, cwd=tmp_path)
    assert run.code == 0, run.text()
    row = next(r for r in run.screen if "open" in r)
    assert "open\\u200bai.chat" in row, run.text()
    assert "ok\\u2060\\ufeff\\U000e0041\\U000e0042" in row, run.text()
    for ch in INVISIBLE:
        assert ch.encode() not in run.raw

    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"type": "start", "id": "x\u200by", "project_id": "a/b"}\n')
    result = run_cli("validate", str(trace), cwd=tmp_path)
    assert "got 'x\\u200by'" in result.stdout, result.stdout
    assert "\u200b" not in result.stdout


@pytest.mark.parametrize("columns", ["0", "00"])
def test_columns_zero_is_no_width_and_tail_still_prints_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """COLUMNS=0 (what a script's `$(tput cols)` gives without a terminal) was taken for a
    width of 0: `tail` printed nothing at all and exited 0, in a pipe and on a terminal.
    Like Python's own shutil.get_terminal_size, 0 is no width: the pipe's 200 columns, the
    terminal's own size."""
    from tests.support.ptyscreen import run_on_pty

    monkeypatch.setenv("COLUMNS", columns)
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op="first.op", at=1, exception="E" * 100)])
    result = run_cli("tail", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "first.op" in result.stdout and "E" * 100 in result.stdout, repr(result.stdout)
    run = run_on_pty(["tail", "--db", str(db)], cols=80, cwd=tmp_path, env=pty_env(COLUMNS=columns))
    assert run.code == 0
    row = next((r for r in run.screen if "first.op" in r), None)
    assert row is not None and len(row) <= 80 and row.endswith("…"), run.text()


def test_login_never_prints_a_key_in_the_server_url(tmp_path: Path) -> None:
    """`login --server https://api:KEY@host` said "could not check the key:
    https://api:KEY@host did not answer": the old key in the error line."""
    import subprocess

    from tests.support.uploadkit import cli_env, tracecli

    url = f"https://api:{URL_KEY}@weave.example.invalid"
    result = subprocess.run(
        tracecli("login", "--server", url),
        input="NEWKEY0123456789\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert URL_KEY not in result.stdout + result.stderr
    assert "https://weave.example.invalid did not answer" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        (["-n", "99999999999999999999"], "-n/--limit"),
        (["-f", "--interval", "inf"], "--interval"),
        (["-f", "--interval", "1e300"], "--interval"),
    ],
)
def test_tail_numbers_too_big_for_the_store_or_the_clock_are_usage_errors(
    tmp_path: Path, flags: list[str], name: str
) -> None:
    """`tail -n 99999999999999999999` (beyond SQLite's 64-bit integers) ended in a
    traceback (`sqlite3.IntegrityError: datatype mismatch`), and `tail -f --interval inf`
    in another (`OverflowError` from time.sleep): each is one line naming the flag now."""
    db = tmp_path / "t.db"
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op="first.op", at=1)])
    result = run_cli("tail", "--db", str(db), *flags, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"tracecli: error: {name}: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.slow
def test_follow_live_status_line_stays_on_one_row_with_wide_characters(tmp_path: Path) -> None:
    """`upload --follow`'s live status line was cut to the terminal's width in characters,
    not cells: with wide characters in it (a CJK server path in "last error: ...") it was
    wider than the window, wrapped, and every redraw left a row behind, scrolling the
    screen. It is cut in cells now: one row, redrawn in place."""
    from tests.support.ptyscreen import run_on_pty

    trace = _long_diagnostics_file(tmp_path / "t.jsonl")
    started = time.monotonic()
    run = run_on_pty(
        [
            "upload",
            "--follow",
            str(trace),
            "--server",
            "http://127.0.0.1:9/日本語のパス名前",
            "-p",
            "acme/p",
            "--rejected",
            str(tmp_path / "rejected.jsonl"),
        ],
        cols=185,
        rows=30,
        cwd=tmp_path,
        env=pty_env(NO_COLOR="1"),
        timeout=60,
        interrupt_when=lambda screen: time.monotonic() - started > 6,
    )
    assert run.code == 130, run.text()
    live = [r for r in run.screen if r.startswith("following 1 file")]
    assert len(live) == 1, run.text()


def _undecodable_name_dir(tmp_path: Path) -> tuple[Path, str]:
    """A folder with a trace file whose name is not UTF-8 (a Latin-1 name copied from an
    old machine): Python holds it as lone surrogates."""
    import shutil

    folder = tmp_path / "traces"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9-trace.jsonl"
    shutil.copyfile(Path(__file__).parent.parent / "samples/invalid/missing_field.jsonl", raw)
    return folder, os.fsdecode(raw)


def test_validate_json_of_a_file_named_in_no_utf8_is_json(tmp_path: Path) -> None:
    """`validate --format json` ended in a traceback (orjson: "str is not valid UTF-8:
    surrogates not allowed") when a file with diagnostics had such a name."""
    import json

    folder, name = _undecodable_name_dir(tmp_path)
    result = run_cli("validate", str(folder), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["errors"] == 2 and {d["path"] for d in doc["diagnostics"]} == {name}


def test_upload_of_a_file_named_in_no_utf8_runs_and_resumes(tmp_path: Path) -> None:
    """`upload` of a folder holding such a file ended in a traceback before sending
    anything: the resume journal (SQLite) refused the name. It uploads, and a second run
    knows the file."""
    folder, _name = _undecodable_name_dir(tmp_path)
    db = str(tmp_path / "t.db")
    first = run_cli("upload", str(folder), "--db", db, cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # the file's own errors: records rejected
    assert "Traceback" not in first.stderr
    assert "caf\\udce9-trace.jsonl:3: error: op_name: required field is missing" in first.stderr
    again = run_cli("upload", str(folder), "--db", db, cwd=tmp_path)
    assert "Traceback" not in again.stderr
    assert "skipped (sent before)  2" in again.stderr, again.stderr


def test_upload_into_a_store_named_in_no_utf8_runs_and_resumes(tmp_path: Path) -> None:
    """`upload --db caf<E9>.db` ended in a traceback: the journal's fingerprint of the
    store encoded its path as UTF-8."""
    sample = Path(__file__).parent.parent / "samples/weave/agent_flat.jsonl"
    db = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.db")
    first = run_cli("upload", str(sample), "--db", db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli("upload", str(sample), "--db", db, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing new to send" in again.stderr, again.stderr


def test_freeplay_upload_of_a_file_named_in_no_utf8_runs_and_resumes(
    tmp_path: Path, refserver: RefServer
) -> None:
    """The same name ended a Freeplay upload in a traceback: the ledger of sent records
    keys them by their files' paths, encoded as UTF-8."""
    from tests.support.freeplay_golden import SESSION

    raw = os.fsencode(tmp_path) + b"/caf\xe9-completions.jsonl"
    freeplay_fixtures.write_completions(Path(os.fsdecode(raw)), 3, SESSION)
    args = [
        "upload",
        os.fsdecode(raw),
        "--target",
        "freeplay",
        "--server",
        refserver.api_base,
        "--api-key",
        freeplay_fixtures.API_KEY,
        "-p",
        freeplay_fixtures.PROJECT,
    ]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in first.stderr + again.stderr
    assert refserver.records()["counts"]["completions"] == 3


def test_export_to_stdout_writes_terminal_controls_as_json_escapes(tmp_path: Path) -> None:
    """`export` wrote an op name's C1 CSI (U+009B) and bidi override (U+202E) raw to
    stdout — a terminal acts on the first, the second reorders what is read — where `tail
    --format json` and validate's JSON write `\\u` escapes: the same JSON values."""
    import json

    db = tmp_path / "t.db"
    op = "evil\u009b2J\u202eop"
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op=op, at=1)])
    result = subprocess_bytes("export", "--db", str(db), cwd=tmp_path)
    assert b"\xc2\x9b" not in result and "\u202e".encode() not in result
    assert [json.loads(line)["op_name"] for line in result.splitlines()] == [op]
    to_file = run_cli("export", "--db", str(db), "-o", str(tmp_path / "x.jsonl"), cwd=tmp_path)
    assert to_file.returncode == 0
    assert json.loads((tmp_path / "x.jsonl").read_text())["op_name"] == op


def subprocess_bytes(*args: str, cwd: Path) -> bytes:
    import subprocess

    from tests.support.uploadkit import cli_env, tracecli

    done = subprocess.run(tracecli(*args), capture_output=True, cwd=cwd, env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("kind", ["dangling", "loop", "directory"])
def test_a_project_file_that_cannot_be_read_is_an_error_not_no_file(
    tmp_path: Path, kind: str
) -> None:
    """A `tracecli.yaml` that is a symbolic link to nothing (a shared config not checked
    out), a link loop or a directory was passed over as if there were none: the project's
    server and profiles silently gone, so `tracecli upload traces/` wrote to the embedded
    store and exited 0. It is an error naming the file, as an unreadable one is."""
    project = tmp_path / "proj"
    project.mkdir()
    config = project / "tracecli.yaml"
    if kind == "dangling":
        config.symlink_to(tmp_path / "shared" / "tracecli.yaml")
    elif kind == "loop":
        config.symlink_to(config)
    else:
        config.mkdir()
    (tmp_path / "tracecli.yaml").write_text("server: http://127.0.0.1:9\n")  # not this one
    result = run_cli("config", "show", cwd=project)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("tracecli: error: tracecli.yaml: cannot read: "), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_user_config_link_to_nothing_is_an_error(tmp_path: Path) -> None:
    config = Path.home() / ".config" / "tracecli" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.symlink_to(tmp_path / "dotfiles" / "tracecli.yaml")
    result = run_cli("config", "show", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(
        "tracecli: error: ~/.config/tracecli/config.yaml: cannot read: "
    ), result.stderr


def test_convert_stopped_by_sigterm_is_interrupted_as_by_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (a CI job cancelled) killed `convert` outright: no "interrupted" line, and
    its temporary output file left behind (megabytes). It stops as on Ctrl-C now: the line,
    no file left, exit 143 (128 + SIGTERM), as validate and upload."""
    import subprocess

    from tests.support.uploadkit import cli_env, gen_calls, tracecli, write_flat

    trace = tmp_path / "big.jsonl"
    write_flat(trace, gen_calls(20000))
    out = tmp_path / "out" / "freeplay.jsonl"
    out.parent.mkdir()
    proc = subprocess.Popen(
        tracecli("convert", str(trace), "--to", "freeplay", "-o", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(TRACECLI_JOBS="0"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.parent.iterdir()):
        time.sleep(0.02)  # converting: its temporary file is there
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.endswith(f"tracecli: interrupted; {out} was not written\n"), err[-500:]
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_export_to_a_file_interrupted_leaves_no_partial_file(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """`export -o FILE` stopped by Ctrl-C or SIGTERM left FILE with the calls written so far
    and said nothing (exit 130, or killed): a later `tracecli upload FILE` would send part
    of the project as if it were all. FILE is written whole or not at all now (an earlier
    FILE kept), with convert's line and exit code."""
    import subprocess

    from tests.support.uploadkit import cli_env, gen_calls, tracecli, write_flat

    trace = tmp_path / "calls.jsonl"
    write_flat(trace, gen_calls(20000))
    db = tmp_path / "t.db"
    loaded = run_cli("upload", str(trace), "--db", str(db), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    out = tmp_path / "out" / "export.jsonl"
    out.parent.mkdir()
    out.write_text("earlier export\n")
    proc = subprocess.Popen(
        tracecli("export", "--db", str(db), "-o", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        len(list(out.parent.iterdir())) < 2 and out.read_text() == "earlier export\n"
    ):
        time.sleep(0.01)  # exporting: its temporary file (or, before, FILE itself) grows
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.endswith(f"tracecli: interrupted; {out} was not written\n"), err[-500:]
    assert out.read_text() == "earlier export\n"
    assert list(out.parent.iterdir()) == [out]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize(
    "args",
    [["tail"], ["export"], ["convert", "SAMPLE", "--to", "freeplay"]],
    ids=["tail", "export", "convert"],
)
def test_stdout_that_cannot_be_written_is_one_line(tmp_path: Path, args: list[str]) -> None:
    """`tail`, `export` and `convert` to a stdout that fails (`> /dev/full`: a full disk)
    ended in a traceback (OSError: No space left on device), where validate, config and
    `tail --format json` say one line and exit 2."""
    import subprocess

    from tests.support.uploadkit import cli_env, tracecli

    db = tmp_path / "t.db"
    with Store(db) as store:
        store.calls_complete([make_call("acme/p", op="first.op", at=1)])
    sample = str(Path(__file__).parent.parent / "samples/weave/agent_flat.jsonl")
    argv = [sample if a == "SAMPLE" else a for a in args]
    if args[0] != "convert":
        argv += ["--db", str(db)]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            tracecli(*argv), stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env=cli_env(), timeout=120,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(
        "tracecli: error: cannot write to stdout: No space left on device\n"
    ), done.stderr[-600:]
    assert "Traceback" not in done.stderr


def test_ctrl_c_at_the_login_prompt_says_so_on_its_own_line(tmp_path: Path) -> None:
    """Ctrl-C at `login`'s hidden key prompt ended the process with 130 and nothing more:
    no line break, so the shell's prompt went on after "(input hidden): ", and no word."""
    from tests.support.ptyscreen import run_on_pty

    run = run_on_pty(
        ["login", "--server", "http://127.0.0.1:9"],
        cols=80,
        rows=10,
        cwd=tmp_path,
        env=pty_env(NO_COLOR="1"),
        timeout=60,
        interrupt_when=lambda screen: any("(input hidden):" in r for r in screen),
    )
    assert run.code == 130, run.text()
    rows = [r for r in run.screen if r]
    assert rows[0] == "W&B API key for http://127.0.0.1:9 (input hidden):", rows
    assert rows[1] == "tracecli: interrupted; nothing was stored", rows


def test_lines_zero_keeps_the_upload_progress_line(tmp_path: Path) -> None:
    """LINES=0 (as COLUMNS=0) was taken for a height of 0: the upload's live progress line
    was never drawn, on a terminal of 30 rows."""
    from tests.support.ptyscreen import run_on_pty
    from tests.support.uploadkit import gen_calls, write_flat

    trace = write_flat(tmp_path / "calls.jsonl", gen_calls(20000))
    run = run_on_pty(
        ["upload", str(trace), "--db", str(tmp_path / "t.db")],
        cols=80,
        rows=30,
        cwd=tmp_path,
        env=pty_env(NO_COLOR="1", LINES="0"),
        timeout=120,
        watch=lambda screen: any("elapsed" in r and "%" in r for r in screen),
    )
    assert run.code == 0, run.text()
    assert run.frames, run.text()


def test_config_show_keeps_its_columns_with_wide_characters(tmp_path: Path) -> None:
    """A value with CJK characters (a store under a Japanese folder) pushed that row's
    source column right: the value was padded by characters, not cells."""
    import unicodedata

    def cells(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    db = str(tmp_path / "日本語のパス" / "traces.db")
    result = run_cli("config", "show", "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    db_row = next(r for r in rows if r.startswith("db "))
    mode_row = next(r for r in rows if r.startswith("mode "))
    assert cells(db_row[: db_row.index("--db")]) == cells(mode_row[: mode_row.index("default")])


def test_a_second_end_is_said_in_english(tmp_path: Path) -> None:
    """ "call id ... already has a end": the article of the half's kind was always "a"."""
    import shutil

    folder = tmp_path / "traces"
    folder.mkdir()
    sample = Path(__file__).parent.parent / "samples/invalid/missing_field.jsonl"
    for name in ("a.jsonl", "b.jsonl"):
        shutil.copyfile(sample, folder / name)
    result = run_cli("upload", str(folder), "--db", str(tmp_path / "t.db"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "already has a end" not in result.stderr
    assert "already has an end" in result.stderr, result.stderr


def test_serve_request_log_shows_a_clients_path_escaped(tmp_path: Path) -> None:
    """`tracecli serve` logs each request's path as decoded: any client that can reach it
    wrote a C1 CSI (`%c2%9b`), an ESC or a bidi override (`%e2%80%ae`) into the terminal
    of whoever runs the server. The log line shows them escaped, as every other line."""
    import httpx

    from tests.support.servers import start_serve

    serve = start_serve(tmp_path / "serve")
    try:
        for path in ("/%c2%9b2J", "/%e2%80%aeevil", "/x%1b%5b31mred"):
            httpx.post(serve.url + path, timeout=10)
    finally:
        serve.stop()
    log = serve.log_path.read_bytes()
    assert b"\xc2\x9b" not in log and "\u202e".encode() not in log and b"\x1b" not in log
    text = log.decode()
    assert '"POST /\\x9b2J" 404' in text, text
    assert '"POST /\\u202eevil" 404' in text, text


def test_serve_settings_warnings_show_a_path_escaped(tmp_path: Path) -> None:
    """`serve` printed its settings' warnings through Rich without making them safe: a
    config folder named with an escape sequence reached the terminal as one."""
    import subprocess

    from tests.support.uploadkit import cli_env, tracecli

    config_home = tmp_path / "cfg\x1b]0;pwned\x07"
    (config_home / "tracecli").mkdir(parents=True)
    config = config_home / "tracecli" / "config.yaml"
    config.write_text("api_key: " + "k" * 40 + "\n")
    config.chmod(0o644)  # the warning: others can read the key
    proc = subprocess.Popen(
        tracecli("serve", "--port", "0", "--db", str(tmp_path / "t.db")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=cli_env(XDG_CONFIG_HOME=str(config_home)),
    )
    try:
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert b"holds API keys but other users can read it" in err, err
    assert b"\x1b" not in err and b"\x07" not in err, err
