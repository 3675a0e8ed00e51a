"""What a CLI owes its shell: --version, completion, NO_COLOR, plain output off a terminal,
and a pre-commit hook manifest that runs `tracecli validate` on trace files only."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT
from tests.support.ptyscreen import AS_TRACECLI, drain
from tracecli import __version__
from tracecli.cli import app

CID = "5f0c7e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
GOOD = (
    json.dumps(
        {
            "type": "call",
            "project_id": "team/app",
            "id": CID,
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "op_name": "llm",
            "started_at": "2026-01-01T12:00:00Z",
            "ended_at": "2026-01-01T12:00:01Z",
            "attributes": {},
            "inputs": {},
            "summary": {},
        }
    )
    + "\n"
)
BAD = '{"type": "start", "project_id": "team/app", "id": "BAD", "op_name": "llm"}\n'
# SGR parameters that set a colour: 30-49 (incl. 38/48 extended), 90-107.
COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    out.pop("NO_COLOR", None) if "NO_COLOR" not in extra else None
    return out


def tracecli(
    *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", AS_TRACECLI, *args],
        capture_output=True,
        env=env(**extra),
        cwd=cwd,
        timeout=120,
    )


# -- --version ------------------------------------------------------------------------------


def test_version_matches_the_package_metadata() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"tracecli {__version__}\n")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


# -- completion -----------------------------------------------------------------------------


def test_completion_options_are_offered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


def complete(words: str, cwd: Path | None = None) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    proc = tracecli(
        cwd=cwd,
        _TRACECLI_COMPLETE="complete_bash",
        COMP_WORDS=words,
        COMP_CWORD=str(cword),
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().split()


@pytest.mark.slow
def test_bash_completion_of_commands_options_and_values(tmp_path: Path) -> None:
    assert complete("tracecli up") == ["upload"]
    assert set(complete("tracecli ")) >= {"validate", "upload", "config", "login", "schema"}
    assert complete("tracecli config s") == ["show"]
    assert "--relogin" in complete("tracecli login --re")
    assert complete("tracecli schema --shape f") == ["flat", "freeplay"]
    (tmp_path / "tracecli.yaml").write_text("profiles:\n  staging: {}\n  prod: {}\n")
    assert complete("tracecli config show --profile ", cwd=tmp_path) == ["prod", "staging"]
    assert complete("tracecli login --profile st", cwd=tmp_path) == ["staging"]
    assert complete("tracecli upload x.jsonl --profile p", cwd=tmp_path) == ["prod"]
    assert complete("tracecli tail --profile ", cwd=tmp_path) == ["prod", "staging"]


def test_show_completion_prints_a_script() -> None:
    proc = tracecli("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert proc.returncode == 0, proc.stderr.decode()
    script = proc.stdout.decode()
    assert "_TRACECLI_COMPLETE=complete_bash" in script
    assert "complete -o default -F _tracecli_completion tracecli" in script


# -- colour and progress --------------------------------------------------------------------


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.jsonl").write_text(GOOD)
    (tmp_path / "mixed.jsonl").write_text(GOOD.replace(CID, CID[:-1] + "7") + BAD)
    return tmp_path


@pytest.mark.slow
def test_no_escape_codes_or_progress_when_not_a_terminal(files: Path) -> None:
    db = str(files / "t.db")
    runs = [
        tracecli("validate", "mixed.jsonl", cwd=files),
        tracecli("upload", "mixed.jsonl", "--db", db, cwd=files),
        tracecli("upload", "good.jsonl", "--db", db, cwd=files),
        tracecli("tail", "--db", db, cwd=files),
        tracecli("config", "show", cwd=files),
        tracecli("login", "--server", "nope", cwd=files),
        tracecli("upload", "missing.jsonl", cwd=files),
    ]
    assert [r.returncode for r in runs] == [1, 1, 0, 0, 0, 2, 2]
    for r in runs:
        assert b"\x1b" not in r.stdout + r.stderr, r.args
        assert b"\r" not in r.stderr, r.args  # no progress line redrawn in place
        assert b"ETA" not in r.stderr, r.args
        assert b"Traceback" not in r.stderr, r.args
    assert b"mixed.jsonl:2: error: id: " in runs[0].stdout + runs[0].stderr
    assert b"llm" in runs[3].stdout and b"success" in runs[3].stdout  # tail's table, plain


def on_a_terminal(args: list[str], cwd: Path, **extra: str) -> tuple[int, bytes]:
    """Run tracecli on a pseudo-terminal; (exit code, everything it drew)."""
    environment = env(TERM="xterm-256color", COLUMNS="120", **extra)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-c", AS_TRACECLI, *args], environment)
    out = drain(fd, 120)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


@pytest.mark.slow
def test_colour_on_a_terminal_unless_no_color(files: Path) -> None:
    args = ["upload", "mixed.jsonl", "--db", str(files / "t.db"), "--restart"]
    code, drawn = on_a_terminal(args, files)
    assert code == 1, drawn
    assert COLOUR.search(drawn), "expected colour on a terminal (is the test still sensitive?)"
    code, drawn = on_a_terminal(args, files, NO_COLOR="1")
    assert code == 1, drawn
    assert not COLOUR.search(drawn), drawn
    assert b"mixed.jsonl:2: error: id: " in drawn


# -- pre-commit -----------------------------------------------------------------------------


def hooks() -> list[dict[str, object]]:
    return yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def test_pre_commit_hook_manifest() -> None:
    (hook,) = hooks()
    assert hook["id"] == "tracecli-validate"
    assert hook["entry"] == "tracecli validate"
    assert hook["language"] == "python"
    assert hook["require_serial"] is True  # one run: starts pair with ends across files
    entry = str(hook["entry"]).split()
    result = CliRunner().invoke(app, [*entry[1:], "--help"])
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("path", "checked"),
    [
        ("traces/run.jsonl", True),
        ("traces/run.ndjson", True),
        ("traces/run.jsonl.gz", True),
        ("run.yaml", True),
        ("deep/run.yml", True),
        ("traces/run.yaml.gz", True),
        ("traces/run.json", False),
        ("archive.tar.gz", False),
        ("README.md", False),
        (".github/workflows/ci.yml", False),
        (".pre-commit-config.yaml", False),
        ("tracecli.yaml", False),
        ("sub/tracecli.yaml", False),
    ],
)
def test_pre_commit_hook_picks_trace_files(path: str, checked: bool) -> None:
    (hook,) = hooks()
    # pre-commit uses Python's re.search on the path relative to the repository root.
    matched = bool(re.search(str(hook["files"]), path)) and not re.search(
        str(hook["exclude"]), path
    )
    assert matched is checked


@pytest.mark.slow
def test_pre_commit_hook_validates_the_files_it_is_given(files: Path) -> None:
    """What pre-commit runs: the entry followed by the staged file names."""
    (hook,) = hooks()
    entry = str(hook["entry"]).split()[1:]
    ok = tracecli(*entry, "good.jsonl", cwd=files)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tracecli(*entry, "good.jsonl", "mixed.jsonl", cwd=files)
    assert bad.returncode == 1
    assert b"mixed.jsonl:2: error:" in bad.stdout + bad.stderr
