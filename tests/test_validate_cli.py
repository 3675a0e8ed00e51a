"""`tracecli validate` through the CLI: exact output in each format, and the exit codes."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.support.validate_kit import EACH_READER, body, call, end, new_id, start, write_jsonl
from tracecli.cli import app
from tracecli.cli.render import escape_data, escape_property, github_line
from tracecli.diagnostics import Diagnostic, Severity

runner = CliRunner()


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["validate", *args], input=input)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so the paths in the output are short and exact."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_file_exits_0_with_only_the_summary(here: Path) -> None:
    write_jsonl(here / "ok.jsonl", call() + call())
    assert run("ok.jsonl") == (0, "1 file, 4 records, 2 calls: 0 errors, 0 warnings\n", "")


def test_one_line_per_problem_with_file_line_and_field(here: Path) -> None:
    cid, tid = new_id(), new_id()
    bad = end(cid)
    bad["summary"]["usage"]["gpt-4o"] = {"prompt_tokens": "lots"}
    write_jsonl(here / "bad.jsonl", [start(cid, tid), bad])
    code, out, err = run("bad.jsonl")
    assert code == 1
    assert err == ""
    assert out == (
        "bad.jsonl:2: error: summary.usage.gpt-4o.prompt_tokens: Input should be a valid "
        "integer, unable to parse string as an integer, got 'lots'\n"
        "1 file, 2 records, 1 call: 1 error, 0 warnings\n"
    )


def test_warnings_alone_exit_0_and_strict_makes_them_errors(here: Path) -> None:
    cid = new_id()
    write_jsonl(here / "w.jsonl", [start(cid, new_id())])
    line = "w.jsonl:1: {}: id: call has no end in the inputs: it stays running\n"
    assert run("w.jsonl") == (
        0,
        line.format("warning") + "1 file, 1 record, 1 call: 0 errors, 1 warning\n",
        "",
    )
    assert run("w.jsonl", "--strict") == (
        1,
        line.format("error")
        + "1 file, 1 record, 1 call: 1 error, 0 warnings (--strict: warnings count as errors)\n",
        "",
    )


def test_json_format_is_one_object_on_stdout(here: Path) -> None:
    cid = new_id()
    write_jsonl(here / "x.jsonl", [*call(), end(cid)])
    code, out, err = run("x.jsonl", "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "files": 1,
        "records": 3,
        "calls": 1,
        "errors": 0,
        "warnings": 1,
        "diagnostics": [
            {
                "path": "x.jsonl",
                "line": 3,
                "field": "id",
                "code": "end-without-start",
                "severity": "warning",
                "message": "the start of this call is not in the inputs",
            }
        ],
    }
    code, out, _ = run("x.jsonl", "-f", "json", "--strict")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["errors"], doc["warnings"]) == (1, False, 1, 0)
    assert doc["diagnostics"][0]["severity"] == "error"


def test_github_format_annotations(here: Path) -> None:
    write_jsonl(here / "g.jsonl", [*call(), {"type": "start", "project_id": "acme"}])
    code, out, _ = run("g.jsonl", "--format", "github")
    assert code == 1
    why = "required by tracecli: without it the call's end cannot be paired and a retry would "
    assert out.splitlines() == [
        "::error file=g.jsonl,line=3,title=op_name::required field is missing",
        "::error file=g.jsonl,line=3,title=started_at::required field is missing",
        "::error file=g.jsonl,line=3,title=attributes::required field is missing",
        "::error file=g.jsonl,line=3,title=inputs::required field is missing",
        "::error file=g.jsonl,line=3,title=project_id::must be 'entity/project' (both parts "
        "non-empty), got 'acme'",
        f"::error file=g.jsonl,line=3,title=id::{why}store the call twice",
        f"::error file=g.jsonl,line=3,title=trace_id::{why}store the call twice",
        "1 file, 3 records, 1 call: 7 errors, 0 warnings",
    ]


def test_github_escaping_follows_the_workflow_command_rules() -> None:
    d = Diagnostic("dir,a/b:c.jsonl", 7, "x", "c", Severity.WARNING, "100% sure\r\nnext: a,b")
    assert github_line(d) == (
        "::warning file=dir%2Ca/b%3Ac.jsonl,line=7,title=x::100%25 sure%0D%0Anext: a,b"
    )
    assert escape_data("%\n:") == "%25%0A:"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    file_level = Diagnostic("f.jsonl", 0, "", "read-error", Severity.ERROR, "unreadable")
    assert github_line(file_level) == "::error file=f.jsonl,title=read-error::unreadable"


def test_max_errors_caps_the_list_not_the_counts(here: Path) -> None:
    write_jsonl(here / "m.jsonl", [{"nope": i} for i in range(5)])
    code, out, _ = run("m.jsonl", "--max-errors", "2")
    lines = out.splitlines()
    assert code == 1
    assert [ln.split(":")[1] for ln in lines[:-1]] == ["1", "2"]
    assert lines[-1] == (
        "1 file, 5 records, 0 calls: 5 errors, 0 warnings; 3 more not listed "
        "(--max-errors 0 lists all)"
    )
    code, out, _ = run("m.jsonl", "--max-errors", "0", "-f", "json")
    assert len(json.loads(out)["diagnostics"]) == 5


def test_pairs_across_files_and_directories(here: Path) -> None:
    cid, tid = new_id(), new_id()
    write_jsonl(here / "a" / "starts.jsonl", [start(cid, tid)])
    write_jsonl(here / "a" / "deeper" / "ends.ndjson.gz", [end(cid)], gz=True)
    (here / "a" / "notes.txt").write_text("not a trace file")
    (here / "b.yaml").write_text(
        "- type: start\n  project_id: acme/agents\n  id: " + new_id() + "\n"
        "  op_name: x\n  trace_id: " + tid + "\n  started_at: '2026-03-02T09:14:05Z'\n"
        "  attributes: {}\n  inputs: {}\n"
    )
    code, out, _ = run("a", "b.yaml")
    assert code == 0
    assert out.splitlines() == [
        "b.yaml:1: warning: id: call has no end in the inputs: it stays running",
        "3 files, 3 records, 2 calls: 0 errors, 1 warning",
    ]


def test_stdin_jsonl_and_yaml(here: Path) -> None:
    recs = call()
    data = "".join(json.dumps(r) + "\n" for r in recs)
    assert run("-", input=data) == (0, "1 file, 2 records, 1 call: 0 errors, 0 warnings\n", "")
    yaml_text = "---\n" + "---\n".join(json.dumps(r) + "\n" for r in recs)
    assert run("-", "--input-format", "yaml", input=yaml_text)[0] == 0
    code, out, _ = run("-", input="{oops\n")
    assert code == 1
    assert out.startswith("<stdin>:1: error: (record): invalid JSON at column 2")
    # YAML piped in without --input-format: the first error says how to read it
    code, out, _ = run("-", input="- type: start\n  id: x\n")
    assert code == 1
    assert out.splitlines()[0].endswith(" (stdin is read as JSONL: --input-format yaml reads YAML)")
    assert "--input-format" not in out.splitlines()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "tracecli: error: missing.jsonl: no such file or directory\n"),
        (
            ["empty_dir"],
            "tracecli: error: empty_dir: no trace files (*.jsonl, *.ndjson, *.json, *.yaml, *.yml, "
            "optionally .gz) in it\n",
        ),
    ],
)
def test_usage_errors_exit_2(here: Path, args: list[str], message: str) -> None:
    (here / "empty_dir").mkdir()
    write_jsonl(here / "ok.jsonl", call())
    assert run("ok.jsonl", *args) == (2, "", message)


@pytest.mark.parametrize(
    "args",
    [["--format", "xml", "ok.jsonl"], ["--max-errors", "-1", "ok.jsonl"], [], ["--bogus"]],
)
def test_bad_flags_exit_2(here: Path, args: list[str]) -> None:
    write_jsonl(here / "ok.jsonl", call())
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err


def test_request_and_batch_shapes(here: Path) -> None:
    cid, tid = new_id(), new_id()
    s, e = body(start(cid, tid)), body(end(cid))
    write_jsonl(here / "r.jsonl", [{"start": s}, {"mode": "end", "req": {"end": e}}])
    assert run("r.jsonl") == (0, "1 file, 2 records, 1 call: 0 errors, 0 warnings\n", "")


def test_the_samples_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert run("samples/weave", "samples/freeplay") == (
        0,
        "samples/weave/agent_flat.jsonl:17: warning: id: call has no end in the inputs: "
        "it stays running\n"
        "6 files, 79 records, 48 calls: 0 errors, 1 warning\n",
        "",
    )


def test_progress_bar_on_a_terminal_for_big_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracecli.cli import validate_run
    from tracecli.upload.validate import Progress

    monkeypatch.setattr(validate_run, "_PROGRESS_MIN_BYTES", 100)
    assert validate_run._ProgressDisplay(terminal=False).__enter__() is None
    display = validate_run._ProgressDisplay(terminal=True)
    with display as on_progress:
        assert on_progress is display
        on_progress(Progress("small.jsonl", 10, 50, 1))  # too small for a bar
        assert display.bar is None
        on_progress(Progress("big.jsonl", 100, 1000, 5))
        on_progress(Progress("big.jsonl", 1000, 1000, 9))
        assert display.bar is not None
        assert display.bar.tasks[0].completed == 1000


# -- start-up: command modules are imported when their command runs -----------------------


def _run_python(code: str) -> str:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_startup_imports_only_the_command_that_runs(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "ok.jsonl", call())
    code = (
        "import sys\n"
        "from tracecli.cli import app\n"
        "print(sorted(m for m in sys.modules if m.startswith('tracecli.cli.cmd_')))\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['validate', {str(tmp_path / 'ok.jsonl')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.startswith('tracecli.cli.cmd_')))\n"
        "print('httpx' in sys.modules)\n"
    )
    assert _run_python(code).splitlines() == ["[]", "['tracecli.cli.cmd_validate']", "False"]


def test_command_table_matches_what_the_modules_register() -> None:
    code = (
        "import importlib\n"
        "from tracecli.cli import COMMANDS, app\n"
        "for m in set(COMMANDS.values()):\n"
        "    importlib.import_module(m)\n"
        "names = [c.name for c in app.registered_commands]\n"
        "names += [g.name for g in app.registered_groups]\n"
        "print(sorted(names) == sorted(COMMANDS), len(names) == len(set(names)))\n"
    )
    assert _run_python(code).split() == ["True", "True"]


def test_help_lists_every_command_and_each_one_runs() -> None:
    from tracecli.cli import COMMANDS

    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listing = result.stdout.split("Commands:\n")[1].split("\n\n")[0]
    listed = [ln.split()[0] for ln in listing.splitlines() if ln.startswith("  ") and ln[2] != " "]
    assert listed == list(COMMANDS)
    for name in COMMANDS:
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert sub.stdout.startswith(f"Usage: tracecli {name} ")
    typo = runner.invoke(app, ["valdate"])
    assert typo.exit_code == 2
    assert "Did you mean 'validate'?" in typo.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_stdout_that_cannot_be_written_is_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_jsonl(tmp_path / "ok.jsonl", call())
    with open("/dev/full", "w") as full:
        out = subprocess.run(
            [sys.executable, "-m", "tracecli", "validate", str(tmp_path / "ok.jsonl")],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
    assert (out.returncode, out.stderr) == (
        2,
        "tracecli: error: cannot write to stdout: No space left on device\n",
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.jsonl", "not json\n{broken\n\n\x01\n"),
        ("t.yaml", "- a: [1\n"),
    ],
)
def test_a_record_that_is_not_json_counts_as_in_upload(here: Path, name: str, text: str) -> None:
    """A line that is not JSON (a YAML record that cannot be read) is a record read and
    refused: `validate` and `upload` count it alike, and upload's figures add up."""
    good = [json.dumps(r) for r in call() + call()]
    if name.endswith(".yaml"):
        (here / name).write_text("---\n" + json.dumps(json.loads(good[0])) + "\n---\n" + text)
        want = 2
    else:
        (here / name).write_text("\n".join(good) + "\n" + text)
        want = 4 + 3
    code, out, _ = run(name, "--format", "json")
    assert code == 1
    assert json.loads(out)["records"] == want
    got = runner.invoke(app, ["upload", name, "--target", "local", "--format", "json"])
    assert "Traceback" not in got.stdout + got.stderr
    report = json.loads(got.stdout)
    assert report["records"] == want
    assert report["records_uploaded"] + report["rejected"] + report["unsent"] == want


@EACH_READER
def test_a_link_that_loops_is_said_so_not_missing(here: Path, args: list[str]) -> None:
    """A symbolic-link loop (ELOOP) is named with the OS's reason, not "no such file"."""
    (here / "loop.jsonl").symlink_to("loop.jsonl")
    got = runner.invoke(app, [*args[:1], "loop.jsonl", *args[1:]])
    assert got.exit_code == 2
    assert got.stderr == "tracecli: error: loop.jsonl: too many levels of symbolic links\n"
    got = runner.invoke(app, [*args[:1], "gone.jsonl", *args[1:]])
    assert got.stderr == "tracecli: error: gone.jsonl: no such file or directory\n"


@EACH_READER
def test_a_link_that_loops_inside_a_directory_is_said(here: Path, args: list[str]) -> None:
    """A looping link under a directory given as input is unreadable input, named with the
    OS's reason (it was skipped without a word; a dangling link: tests/test_input_dirs.py)."""
    (here / "d").mkdir()
    write_jsonl(here / "d" / "ok.jsonl", call())
    (here / "d" / "loop.jsonl").symlink_to("loop.jsonl")
    got = runner.invoke(app, [*args[:1], "d", *args[1:]])
    assert got.exit_code == 2
    loop = os.path.join("d", "loop.jsonl")
    assert (
        got.stderr == f"tracecli: error: {loop}: cannot read the file: {os.strerror(errno.ELOOP)}\n"
    )
