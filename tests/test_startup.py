"""Start-up: what `tracecli validate` of a small Weave JSONL file imports and builds.

Most trace files are small, so the time before the first record is read counts in every
ratio of bench/. What that run never needs stays out of it: the OpenTelemetry mapping,
PyYAML, the HTTP client and the progress bar, and pydantic altogether: no call model
(the fast path knows their fields by name, schema/fields.py), no Freeplay model, no
adapter for option values (cli/coerce.py). Checked from what a fresh interpreter holds after the
run, not from a time, so a busy machine cannot fail it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tracecli.schema import fields, weave

SAMPLE = ROOT / "samples" / "weave" / "agent_complete.jsonl"  # 12 completed calls

# runs the CLI as its console script does, then prints what the interpreter holds
PROBE = """
import json, sys
sys.argv = ["tracecli", *sys.argv[1:]]
from tracecli.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
weave = sys.modules.get("tracecli.schema.weave")
models = ("StartedCallSchemaForInsert", "EndedCallSchemaForInsert", "CompletedCallSchemaForInsert")
built = weave is not None and any(getattr(weave, m).__pydantic_complete__ for m in models)
loaded = sorted(m for m, v in sys.modules.items() if v is not None)  # None: kept out
print(json.dumps({"code": code, "modules": loaded, "built": built}), file=sys.stderr)
"""

NOT_NEEDED = (
    "tracecli.otel",
    "tracecli.upload.otlp_map",
    "tracecli.inputs.yaml_records",
    "yaml",
    "tracecli.schema.freeplay",
    "tracecli.schema.provider_messages",
    "httpx",
    "rich.progress",
    "typer._adapters",
    "pydantic",
)


def probe(*args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    last = done.stderr.strip().splitlines()[-1]
    result: dict[str, object] = json.loads(last)
    return result


def test_validate_of_a_small_jsonl_file_imports_only_what_it_needs() -> None:
    seen = probe("validate", str(SAMPLE))
    assert seen["code"] == 0
    modules = seen["modules"]
    assert isinstance(modules, list)
    loaded = [m for m in modules if m.startswith(NOT_NEEDED)]
    assert loaded == [], "validate of a small JSONL file imports what it does not use"
    assert seen["built"] is False, "a call model was built though no record needed it"


def test_the_slow_path_still_builds_what_it_needs(tmp_path: Path) -> None:
    """A record the fast path does not vouch for goes through the models, as before."""
    path = tmp_path / "calls.jsonl"
    call = json.loads(SAMPLE.read_text().splitlines()[0])
    path.write_text(json.dumps({**call, "started_at": 1767268800}) + "\n")
    seen = probe("validate", str(path))
    assert seen["built"] is True


def test_the_field_names_are_the_models_fields() -> None:
    assert tuple(weave.StartedCallSchemaForInsert.model_fields) == fields.STARTED_FIELDS
    assert tuple(weave.EndedCallSchemaForInsert.model_fields) == fields.ENDED_FIELDS
    assert tuple(weave.CompletedCallSchemaForInsert.model_fields) == fields.COMPLETED_FIELDS
    assert tuple(weave.LLMUsageSchema.model_fields) == fields.USAGE_FIELDS
    ended = set(fields.COMPLETED_FIELDS) - set(fields.STARTED_FIELDS)
    assert set(fields.END_FIELDS) == ended


def test_the_validate_command_shows_the_librarys_default_max_errors() -> None:
    """The command declares the number itself, so `--help` imports no checks to show it."""
    from tracecli.cli import cmd_validate
    from tracecli.upload import validate

    assert cmd_validate.DEFAULT_MAX_ERRORS == validate.DEFAULT_MAX_ERRORS


HELP_NEEDS_NONE_OF = (
    "rich",
    "httpx",
    "pydantic",
    "yaml",
    "sqlite3",
    "tracecli.upload",
    "tracecli.config.settings",
    "tracecli.targets",
    "tracecli.store.db",
    "tracecli.readback.sources",
    "tracecli.schema.weave",
)


def test_help_builds_every_command_without_importing_what_they_run() -> None:
    """`tracecli --help` lists every command (so builds each one) and `tail --help` prints
    a page: neither needs an HTTP client, the settings, the store, pydantic or Rich."""
    for args in (["--help"], ["tail", "--help"], ["upload", "--help"]):
        seen = probe(*args)
        assert seen["code"] == 0
        modules = seen["modules"]
        assert isinstance(modules, list)
        loaded = [m for m in modules if m.startswith(HELP_NEEDS_NONE_OF)]
        assert loaded == [], f"{args} imports what it does not use"


UPLOAD_NEEDS_NONE_OF = (
    "pydantic",  # the settings' key is config/secret.py's SecretStr
    "yaml",  # no config file here
    "trio",  # httpcore's probe, kept out by the console script
    "httpx._main",  # httpx's own command line
    "tracecli.otel",
    "tracecli.upload.otlp",
    "tracecli.store.db",  # a server, not the store
    "tracecli.schema.weave",
    "rich",  # no terminal: its lines are written without Rich (cli/common.py PlainConsole)
)


def test_upload_of_a_small_jsonl_file_to_a_server_imports_only_what_it_needs() -> None:
    """A dry run to a server builds the HTTP client as a real upload does (and sends
    nothing): no pydantic, no OpenTelemetry mapping, no store, no PyYAML."""
    seen = probe("upload", str(SAMPLE), "--dry-run", "--server", "http://127.0.0.1:9")
    assert seen["code"] == 0
    modules = seen["modules"]
    assert isinstance(modules, list)
    assert "httpx" in modules  # the client was built: the probe saw a real run
    loaded = [m for m in modules if m.startswith(UPLOAD_NEEDS_NONE_OF)]
    assert loaded == [], "upload to a server imports what it does not use"


# `validate` of plain paths runs without Typer (cli/validate_run.py): the same output and
# exit code as the app gives the same command line, which these runs compare
AS_APP = "import sys; from tracecli.cli.root import app; app(sys.argv[1:], prog_name='tracecli')"
AS_SCRIPT = "import sys; sys.argv[0] = 'tracecli'; from tracecli.cli import main; main()"


def _both(args: list[str], cwd: Path, stdin: str = "") -> tuple[object, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            input=stdin,
            timeout=120,
        )
        for code in (AS_SCRIPT, AS_APP)
    ]
    return tuple((r.returncode, r.stdout, r.stderr) for r in runs)


def test_plain_validate_without_typer_says_what_the_app_says(tmp_path: Path) -> None:
    from tracecli.cli.validate_run import quick_args

    bad = tmp_path / "bad.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + "\n{not json\n")
    lines = [
        ["validate", str(SAMPLE)],
        ["validate", str(bad), str(SAMPLE), "--strict", "--format", "json"],
        ["validate", "-f", "github", str(bad), "--max-errors", "007"],
        ["validate", str(tmp_path / "missing.jsonl")],  # exit 2, one line
        ["validate", "-", "--input-format", "jsonl"],
    ]
    for args in lines:
        assert quick_args(args) is not None, args
        script, app = _both(args, tmp_path, stdin=SAMPLE.read_text())
        assert script == app, args


def test_validate_goes_to_the_app_when_the_command_line_is_not_plain() -> None:
    from tracecli.cli.validate_run import quick_args

    for args in (
        ["validate"],
        ["validate", "a.jsonl", "--help"],
        ["validate", "a.jsonl", "-h"],
        ["validate", "a.jsonl", "--format=json"],
        ["validate", "a.jsonl", "-fjson"],
        ["validate", "a.jsonl", "--format", "JSON"],
        ["validate", "a.jsonl", "--format"],
        ["validate", "a.jsonl", "--max-errors", "-1"],
        ["validate", "a.jsonl", "--max-errors", "1e3"],
        ["validate", "a.jsonl", "--strict", "--strict"],
        ["validate", "a.jsonl", "-f", "json", "--format", "text"],
        ["validate", "--", "-a.jsonl"],
        ["validate", "a.jsonl", "--no-such-option"],
        ["upload", "a.jsonl"],
        ["--version"],
    ):
        assert quick_args(args) is None, args


def test_what_plain_validate_accepts_the_command_accepts(tmp_path: Path) -> None:
    """Every option and value the Typer-less run takes is one the command declares."""
    from typer.testing import CliRunner

    from tracecli.cli.options import StdinFormat
    from tracecli.cli.render import ReportFormat
    from tracecli.cli.root import app
    from tracecli.cli.validate_run import QUICK_VALUED

    assert QUICK_VALUED["--format"][1] == QUICK_VALUED["-f"][1] == set(ReportFormat)
    assert QUICK_VALUED["--input-format"][1] == set(StdinFormat)
    for flag, (_, accepted) in QUICK_VALUED.items():
        for value in sorted(accepted or {"0", "12"}):
            args = ["validate", str(SAMPLE), flag, value, "--strict"]
            result = CliRunner().invoke(app, args, input="")
            assert result.exit_code in (0, 1), (args, result.output)


def test_completion_and_windows_go_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracecli.cli.validate_run import quick_args

    monkeypatch.setenv("_TRACECLI_COMPLETE", "complete_bash")
    assert quick_args(["validate", "a.jsonl"]) is None
    monkeypatch.delenv("_TRACECLI_COMPLETE")
    assert quick_args(["validate", "a.jsonl"]) is not None
    monkeypatch.setattr(os, "name", "nt")  # Click expands wildcards there
    assert quick_args(["validate", "*.jsonl"]) is None


SAID = [
    "tracecli: error: plain",
    "tracecli: warning: [bold]not markup[/bold] :smile: ",
    "  leading and trailing  ",
    "wide 漢字 and é combining e\u0301 and emoji \U0001f600",
    "x" * 300,  # longer than any terminal: one line all the same
    "control \x1b[31m\t\r\n\u202e and bidi",
    "",
]


def test_plain_lines_are_the_bytes_rich_writes_off_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracecli.cli.common import PlainConsole, say, say_diagnostic, stderr_console, stderr_lines

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(stderr_lines(), PlainConsole)  # capsys's stderr is no terminal
    written = []
    for console in (stderr_console(), PlainConsole()):
        for text in SAID:
            say(console, text)
            say_diagnostic(console, f"a.jsonl:1: error: id: {text}", "error")
        written.append(capsys.readouterr().err)
    assert written[0].count("\n") == 2 * len(SAID)
    assert written[1] == written[0]


def test_rich_keeps_every_stream_it_could_treat_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FORCE_COLOR or TTY_COMPATIBLE (even empty) make Rich decide: a pipe may be a
    terminal to it."""
    from tracecli.cli.common import PlainConsole, stderr_lines

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.setenv(name, "")
        assert not isinstance(stderr_lines(), PlainConsole)
        monkeypatch.delenv(name)


def test_upload_without_rich_says_what_rich_said(tmp_path: Path) -> None:
    """The same upload with its lines written by Rich (FORCE_COLOR set empty: Rich decides,
    and finds no terminal) and without: the same stdout, stderr and exit code, but for the
    elapsed time and the rate."""
    bad = tmp_path / "bad.jsonl"
    lines = SAMPLE.read_text().splitlines()
    bad.write_text("\n".join([*lines[:3], "{not json", '{"id": "\u202e"}']) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path)}
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    seen = []
    for extra in ({}, {"FORCE_COLOR": ""}):
        done = subprocess.run(
            [sys.executable, "-c", AS_SCRIPT, "upload", str(bad), "--dry-run"],
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=tmp_path,
            timeout=120,
        )
        timed = ("elapsed", "calls/s")
        err = [line for line in done.stderr.splitlines() if not line.startswith(timed)]
        seen.append((done.returncode, done.stdout, err))
    assert seen[0][2], "the upload said nothing"
    assert seen[0] == seen[1]


def test_a_dry_run_imports_no_client_and_no_rich() -> None:
    """A dry run without a server names the store and sends nothing: no HTTP client, no TLS
    (ssl loads OpenSSL: ~40M instructions), no Rich off a terminal."""
    seen = probe("upload", str(SAMPLE), "--dry-run")
    assert seen["code"] == 0
    modules = seen["modules"]
    assert isinstance(modules, list)
    loaded = [m for m in modules if m.startswith(("rich", "ssl", "_ssl", "httpx", "httpcore"))]
    assert loaded == [], "a dry run imports what it does not use"


# every command built before the app runs (Typer builds those registered already), so the
# list of commands comes from the whole commands
AS_BUILT = (
    "import importlib, sys; from tracecli.cli.root import COMMANDS, app\n"
    "for module in COMMANDS.values(): importlib.import_module(module)\n"
    "app(sys.argv[1:], prog_name='tracecli')"
)


def test_the_list_of_commands_is_the_same_without_building_them(tmp_path: Path) -> None:
    """`tracecli --help` lists every command from what its module registered; the page is
    the one the whole commands give, at any width, and with no arguments too."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for columns, args in (("80", ["--help"]), ("52", ["--help"]), ("80", [])):
        pages = [
            subprocess.run(
                [sys.executable, "-c", code, *args],
                capture_output=True,
                text=True,
                env={**env, "COLUMNS": columns},
                cwd=tmp_path,
                timeout=120,
            )
            for code in (AS_SCRIPT, AS_BUILT)
        ]
        seen = [(p.returncode, p.stdout, p.stderr) for p in pages]
        assert "Commands:" in seen[0][1] + seen[0][2]
        assert seen[0] == seen[1], (columns, args)


def test_upload_to_the_store_and_its_tail_import_no_pydantic_and_no_client(tmp_path: Path) -> None:
    """The sample's times are ISO text and its counts integers: the store stores them
    without pydantic's lax readers (store/rows.py, store/summary_ints.py), nor a client."""
    seen = probe("upload", str(SAMPLE), "--db", str(tmp_path / "store.db"))
    assert seen["code"] == 0
    modules = seen["modules"]
    assert isinstance(modules, list)
    assert "tracecli.store.rows" in modules  # the store was written: the probe saw a real run
    loaded = [m for m in modules if m.startswith(("pydantic", "rich", "ssl", "httpx"))]
    assert loaded == [], "an upload to the store imports what it does not use"
    # and `tail` of that store opens no HTTP client (readback/sources.py)
    seen = probe("tail", "--db", str(tmp_path / "store.db"))
    assert seen["code"] == 0
    modules = seen["modules"]
    assert isinstance(modules, list)
    assert "tracecli.store.db" in modules
    loaded = [m for m in modules if m.startswith(("pydantic", "ssl", "httpx"))]
    assert loaded == [], "tail of the store imports what it does not use"
