"""The docs cannot drift from the code: README.md and docs/*.md are read and checked.

- every `tracecli ...` command they show (code blocks, `run:` lines of workflows, inline code)
  names a real command, and every option it uses is one the command accepts; concrete
  commands are also parsed by the Typer app, as the shell would hand them over;
- the output they show for side-effect-free commands (`--help`, `--version`, `validate`,
  `schema`, `convert` to stdout) is what those commands print now;
- README's exit-code table lists the codes the code uses, with matching meanings;
- docs/configuration.md's settings table lists every setting with its variables, and its
  `config show` example is re-run against the configuration it shows.

A failure names the file and line of the stale text.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import ROOT
from tracecli.cli import app
from tracecli.config.fields import FIELDS
from tracecli.config.per_target import KEY_ENV, PROJECT_ENV, SERVER_ENV
from tracecli.diagnostics import TracecliError, UsageError

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "text", "yaml", "yml"}
SAFE_TO_RUN = {"validate", "schema", "convert", "--version"}  # read only, deterministic


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    lines: list[str]

    def where(self, offset: int) -> str:
        return f"{_rel(self.path)}:{self.line + 1 + offset}"


def blocks(path: Path) -> list[Block]:
    out: list[Block] = []
    current: Block | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and current is None:
            current = Block(path, n, fence.group(1).lower(), [])
        elif fence:
            out.append(current)  # type: ignore[arg-type]
            current = None
        elif current is not None:
            current.lines.append(line)
    return out


@dataclass
class Command:
    where: str
    text: str  # as written, from "tracecli" on
    concrete: bool  # a real command line, not a synopsis with placeholders


def _segments(text: str) -> list[str]:
    """The `tracecli ...` parts of a shell line (split at &&, ||, ;, spaced pipes)."""
    text = re.sub(r"\s+#.*$", "", text)  # a trailing shell comment
    parts = re.split(r"&&|\|\||;|\s\|\s", text)
    # Redirections belong to the shell, not to tracecli.
    parts = [re.sub(r"\s+(?:\d?>>?|<)\s*(?:&\d|\S+)", "", p) for p in parts]
    return [p.strip() for p in parts if re.match(r"^\s*tracecli(\s|$)", p)]


def _is_synopsis(text: str) -> bool:
    return bool(re.search(r"\[|\.\.\.|<[\w-]+>|\b[A-Z]{2,}\b(?!=)", text.replace("$", "")))


def commands(path: Path) -> list[Command]:
    found: list[Command] = []
    for b in blocks(path):
        if b.lang not in SHELL_LANGS:
            continue
        for i, raw in enumerate(b.lines):
            line = raw.strip()
            partial = False  # pre-commit appends the file names to an `entry:`
            if b.lang in ("yaml", "yml"):
                m = re.match(r"^-?\s*(run|entry):\s*(.*)$", line)
                if not m:
                    continue
                partial = m.group(1) == "entry"
                line = m.group(2).strip().strip("\"'")
            elif line.startswith("$ "):
                line = line[2:]
            elif b.lang == "console":
                continue  # output, not a command
            for seg in _segments(line):
                found.append(Command(b.where(i), seg, not partial and not _is_synopsis(seg)))
    text = path.read_text(encoding="utf-8")
    in_fence = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for m in re.finditer(r"`(tracecli(?: [^`]*)?)`", line):
            for seg in _segments(m.group(1)):
                found.append(Command(f"{_rel(path)}:{n}", seg, False))
    return found


def _root() -> Any:
    return typer.main.get_command(app)


def _opts(cmd: Any) -> set[str]:
    names = {"--help"}
    for p in cmd.params:
        names.update(getattr(p, "opts", []))
        names.update(getattr(p, "secondary_opts", []))
    return names


def resolve(cmd: Command) -> tuple[Any, list[str], list[str]]:
    """(the command object, its path of names, the remaining arguments) or a failure."""
    tokens = shlex.split(cmd.text.replace("\\\n", " "), posix=True)[1:]
    node = _root()
    names: list[str] = []
    while tokens and hasattr(node, "commands"):
        head = tokens[0]
        if head == "...":  # "tracecli ... --format json": any command
            return None, names, []
        if head.startswith("-"):
            if head.split("=")[0] not in _opts(node):
                pytest.fail(f"{cmd.where}: `{cmd.text}`: tracecli has no option {head}")
            if head in ("--version", "--help", "--install-completion", "--show-completion"):
                return node, names, tokens
            tokens = tokens[1:]
            continue
        if head not in node.commands:
            known = ", ".join(sorted(node.commands))
            pytest.fail(f"{cmd.where}: `{cmd.text}`: no command {head!r} (known: {known})")
        node = node.commands[head]
        names.append(head)
        tokens = tokens[1:]
    return node, names, tokens


def check_options(cmd: Command) -> None:
    node, names, rest = resolve(cmd)
    if node is None:
        return
    known = _opts(node)
    for token in rest:
        if not re.match(r"^--?[A-Za-z]", token):
            continue
        name = token.split("=")[0]
        if name not in known:
            full = " ".join(["tracecli", *names])
            pytest.fail(f"{cmd.where}: `{cmd.text}`: {full} has no option {name}")


def check_parses(cmd: Command) -> None:
    node, names, rest = resolve(cmd)
    if node is None or {"--install-completion", "--show-completion", "--help"} & set(rest):
        return  # options checked already; these would print or install
    if not names and rest == ["--version"]:
        return
    try:
        node.make_context(" ".join(["tracecli", *names]), list(rest), resilient_parsing=False)
    except Exception as exc:  # Typer's vendored Click errors; nothing to import
        if type(exc).__name__ == "Exit" and getattr(exc, "exit_code", 1) == 0:
            return
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"{cmd.where}: `{cmd.text}` does not parse: {message}")


ALL_DOCS = [README, *DOCS]


def test_the_docs_exist() -> None:
    assert README.is_file(), "README.md is missing"
    names = {p.name for p in DOCS}
    for needed in ("configuration.md", "github-actions.md", "pre-commit.md", "editors.md"):
        assert needed in names, f"docs/{needed} is missing"


def _all_commands() -> list[Command]:
    return [c for path in ALL_DOCS if path.is_file() for c in commands(path)]


@pytest.mark.slow
def test_every_command_shown_exists_with_its_options() -> None:
    cmds = _all_commands()
    assert len(cmds) > 10, "the docs show almost no tracecli commands: is the extractor broken?"
    for cmd in cmds:
        check_options(cmd)


@pytest.mark.slow
def test_every_concrete_command_parses() -> None:
    for cmd in _all_commands():
        if cmd.concrete:
            check_parses(cmd)


# -- shown output ---------------------------------------------------------------------------


@dataclass
class Example:
    where: str
    command: str
    output: list[str]


def examples(path: Path) -> list[Example]:
    """`$ tracecli ...` lines of console blocks, each with the lines printed below it."""
    out: list[Example] = []
    for b in blocks(path):
        if b.lang != "console":
            continue
        current: Example | None = None
        for i, line in enumerate(b.lines):
            if line.startswith("$ "):
                current = None
                segs = _segments(line[2:])
                if len(segs) == 1 and line[2:].strip() == segs[0]:
                    current = Example(b.where(i), segs[0], [])
                    out.append(current)
            elif current is not None:
                current.output.append(line)
    return out


def _runnable(cmd: str) -> bool:
    tokens = shlex.split(cmd)[1:]
    if not tokens or any(t in (">", ">>", "<") or t.startswith(">") for t in tokens):
        return False
    if "--help" in tokens or tokens == ["--version"]:
        return True
    return tokens[0] in SAFE_TO_RUN and "-o" not in tokens and "--output" not in tokens


def _run(cmd: str) -> list[str]:
    tokens = shlex.split(cmd)[1:]
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, tokens, prog_name="tracecli", env={"COLUMNS": "80"})
    finally:
        os.chdir(old)
    return (result.stdout + result.stderr).splitlines()


def _norm(line: str) -> str:
    return " ".join(line.split())


def test_shown_output_is_what_the_commands_print() -> None:
    checked = 0
    for path in ALL_DOCS:
        for ex in examples(path) if path.is_file() else []:
            if not _runnable(ex.command) or not any(x.strip() for x in ex.output):
                continue
            actual = _run(ex.command)
            if "--help" in ex.command:
                # Compare as text: wrapping may differ, the words may not.
                whole = _norm(" ".join(actual))
                for i, line in enumerate(ex.output):
                    if line.strip() and line.strip() != "..." and _norm(line) not in whole:
                        pytest.fail(
                            f"{ex.where}: `{ex.command}` output is stale; {i + 1} lines below: "
                            f"{line.strip()!r} is not in the current --help:\n" + "\n".join(actual)
                        )
            else:
                have = {x.rstrip() for x in actual}
                for i, line in enumerate(ex.output):
                    if line.strip() and line.strip() != "..." and line.rstrip() not in have:
                        pytest.fail(
                            f"{ex.where}: `{ex.command}` output is stale; {i + 1} lines below: "
                            f"{line.rstrip()!r} is not printed now. It prints:\n"
                            + "\n".join(actual)
                        )
            checked += 1
    assert checked >= 1, (
        "no runnable example with its output (e.g. `$ tracecli validate samples/` followed by "
        "what it prints, in a ```console block) found in README.md or docs/"
    )


# -- exit codes -----------------------------------------------------------------------------


def exit_code_table(path: Path) -> dict[int, tuple[str, str]]:
    """{code: (meaning, file:line)} from the first table whose header mentions exit codes."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if line.lstrip().startswith("|") and re.search(r"\b(exit|code)\b", line, re.I):
            rows: dict[int, tuple[str, str]] = {}
            for m, row in enumerate(lines[n + 2 :], n + 3):
                if not row.lstrip().startswith("|"):
                    break
                cells = [c.strip().strip("`") for c in row.strip().strip("|").split("|")]
                if cells and cells[0].isdigit():
                    rows[int(cells[0])] = (" ".join(cells[1:]), f"{path.name}:{m}")
            if rows:
                return rows
    pytest.fail(f"{path.name} has no exit-code table (a table whose header mentions 'exit code')")


def test_readme_exit_codes_agree_with_the_code(tmp_path: Path) -> None:
    table = exit_code_table(README)
    expected = {
        0: r"\b(ok|success|succeed|all good|stored|valid)",
        1: r"\b(invalid|reject|error)",
        2: r"\b(usage|config)",
        130: r"\binterrupt",
        143: r"\binterrupt.*SIGTERM",
    }
    for code, (meaning, where) in table.items():
        assert code in expected, f"{where}: exit code {code} is not one tracecli uses"
        assert re.search(expected[code], meaning, re.I), (
            f"{where}: exit code {code} is described as {meaning!r}; the code uses it for "
            f"{expected[code]}"
        )
    missing = sorted(set(expected) - set(table))
    assert not missing, f"README.md's exit-code table lacks {missing}"
    # ... and the code does use them so.
    assert TracecliError("x").exit_code == 1 and UsageError("x").exit_code == 2
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "start"}\n')
    assert runner.invoke(app, ["validate", str(bad)]).exit_code == 1
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.jsonl")]).exit_code == 2
    assert runner.invoke(app, ["upload", "--no-such-flag", str(bad)]).exit_code == 2
    sources = "\n".join(p.read_text() for p in (ROOT / "tracecli").rglob("*.py"))
    assert re.search(r"\b130\b", sources), "nothing in tracecli/ exits 130 any more"


# -- docs/configuration.md ------------------------------------------------------------------


def settings_table() -> dict[str, tuple[str, str]]:
    path = ROOT / "docs" / "configuration.md"
    rows: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^\|\s*`(\w+)`\s*\|(.*)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), f"docs/configuration.md:{n}")
    return rows


def test_configuration_table_lists_every_setting_and_variable() -> None:
    rows = settings_table()
    assert set(rows) == set(FIELDS), (
        f"docs/configuration.md settings table: missing {sorted(set(FIELDS) - set(rows))}, "
        f"unknown {sorted(set(rows) - set(FIELDS))}"
    )
    extra = {"server": SERVER_ENV, "api_key": KEY_ENV, "project": PROJECT_ENV}
    for name, field in FIELDS.items():
        text, where = rows[name]
        for var in field.env:
            assert f"`{var}`" in text, f"{where}: {name} should name ${var}"
        for per_target in extra.get(name, {}).values():
            for var in (per_target,) if isinstance(per_target, str) else per_target:
                assert f"`{var}`" in text, f"{where}: {name} should name ${var}"


def test_configuration_example_is_what_config_show_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-create the documented set-up (its tracecli.yaml, a netrc entry, the environment)
    under a fake /home/me and compare `config show` line by line."""
    doc = ROOT / "docs" / "configuration.md"
    bs = blocks(doc)
    project_yaml = next(b for b in bs if b.lines and b.lines[0].startswith("# tracecli.yaml"))
    shown = next(b for b in bs if b.lang == "console" and "config show" in b.lines[0])
    home = tmp_path / "home" / "me"
    app_dir = home / "app"
    app_dir.mkdir(parents=True)
    (app_dir / "tracecli.yaml").write_text("\n".join(project_yaml.lines) + "\n")
    config = home / ".config" / "tracecli" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("concurrency: 8\n")
    host = "weave.staging.example.com"
    (home / ".netrc").write_text(f"machine {host} login user password {'0' * 40}\n")
    (home / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("TRACECLI_CONCURRENCY", "8")
    monkeypatch.chdir(app_dir)
    command = shown.lines[0][2:]
    result = CliRunner().invoke(app, shlex.split(command)[1:], prog_name="tracecli")
    assert result.exit_code == 0, result.stderr
    fake = str(tmp_path)
    actual = [_norm(x.replace(fake, "")) for x in result.stdout.splitlines()]
    for i, line in enumerate(shown.lines[1:], 1):
        assert _norm(line) in actual, (
            f"{shown.where(i)}: {line!r} is not what `{command}` prints now:\n"
            + result.stdout.replace(fake, "")
        )


ERROR_LINE = re.compile(r"^tracecli: error: tracecli\.yaml:(\d+): (?:unknown key '(\w+)'|(\w+):)")


def test_configuration_error_examples_are_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `tracecli: error: tracecli.yaml:N: ...` line shown is what a file with that key on
    line N gives."""
    doc = ROOT / "docs" / "configuration.md"
    monkeypatch.chdir(tmp_path)
    seen = 0
    for n, line in enumerate(doc.read_text().splitlines(), 1):
        m = re.match(
            r"^tracecli: error: tracecli\.yaml:(\d+): (?:unknown key '(\w+)'|(\w+):)", line
        )
        if not m:
            continue
        key = m.group(2) or m.group(3)
        filler = ["# filler"] * (int(m.group(1)) - 1)
        (tmp_path / "tracecli.yaml").write_text("\n".join([*filler, f"{key}: 5", ""]))
        result = CliRunner().invoke(app, ["config", "show"])
        assert result.stderr.strip() == line.strip(), f"docs/configuration.md:{n}: stale error"
        seen += 1
    assert seen >= 2


# -- upload / tail examples against the embedded store -------------------------------------

# Lines whose values change from run to run; "/home/me" stands for the reader's home.
_VARYING = re.compile(r"^\s*(elapsed|calls/s)\s")
_STORE_ONLY = ("--server", "--follow", "-F", "--target")


def _store_session(block: Block) -> bool:
    """A console block whose commands only read or write the embedded store (and shell
    helpers), so it can be replayed in a sandbox."""
    commands = [line[2:] for line in block.lines if line.startswith("$ ")]
    segs = [s for c in commands for s in _segments(c)]
    if not segs:
        return False
    made: set[str] = set()  # files the session writes (--rejected) and then reads
    for seg in segs:
        tokens = shlex.split(seg)
        if len(tokens) < 2 or tokens[1] not in ("upload", "tail"):
            return False
        if any(t in _STORE_ONLY for t in tokens):
            return False
        made.update(b for a, b in itertools.pairwise(tokens) if a == "--rejected")
        if tokens[1] == "upload":
            inputs = [t for t in tokens[2:] if not t.startswith("-") and t not in made]
            if not all(t.startswith("samples/") for t in inputs if t.endswith("/") or "." in t):
                return False  # an illustration with the reader's own files
    return not any(re.search(r"\b(curl|serve|login|\$EDITOR)\b", c) for c in commands)


def _replay(
    block: Block,
    command: str | None,
    shown: list[tuple[int, str]],
    rc: int,
    cwd: Path,
    env: dict[str, str],
) -> int:
    """Run one `$ ` line with the shell (`$?` is the previous line's status), check that the
    lines shown below it are printed, and return its exit status."""
    import subprocess

    if command is None:
        return rc
    r = subprocess.run(
        ["bash", "-c", f"(exit {rc}); {command}"], cwd=cwd, env=env, capture_output=True, text=True
    )
    printed = {x.rstrip() for x in (r.stdout + r.stderr).splitlines()}
    for i, line in shown:
        line = line.rstrip().replace("/home/me", env["HOME"])
        if not line or line.strip() == "..." or _VARYING.match(line):
            continue
        assert line in printed, (
            f"{block.where(i)}: `{command}` does not print {line!r} now; it prints:\n"
            f"{r.stdout}{r.stderr}"
        )
    return r.returncode


@pytest.mark.slow  # > 5 s: out of the fast loop (-m "not slow")
def test_store_examples_print_what_is_shown(tmp_path: Path) -> None:
    """README's and serve-and-tail.md's upload / tail sessions, replayed in order per file by
    the shell in a sandbox with a copy of samples/ and an empty home: every line they show is
    printed (timings aside)."""
    import shutil
    import sys

    shim = tmp_path / "bin" / "tracecli"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tracecli "$@"\n')
    shim.chmod(0o755)
    replayed = 0
    for path in (README, ROOT / "docs" / "serve-and-tail.md"):
        work = tmp_path / path.stem / "work"
        home = tmp_path / path.stem / "home"
        shutil.copytree(ROOT / "samples", work / "samples")
        home.mkdir()
        env = {
            "PATH": f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "LC_ALL": "C.UTF-8",
        }
        for block in blocks(path):
            if block.lang != "console" or not _store_session(block):
                continue
            if "| jq" in "\n".join(block.lines) and shutil.which("jq") is None:
                continue
            pending: list[tuple[int, str]] = []
            command: str | None = None
            rc = 0
            for i, line in enumerate(block.lines):
                if line.startswith("$ "):
                    rc = _replay(block, command, pending, rc, work, env)
                    command, pending = line[2:], []
                else:
                    pending.append((i, line))
            _replay(block, command, pending, rc, work, env)
            replayed += 1
    assert replayed >= 3, "the README's quickstart and rejected-file sessions were not found"


def test_readme_test_command_is_what_ci_runs() -> None:
    """The command README gives for the tests is the one `.ci/run` runs, character for
    character, so a reader who runs it gets what CI gets."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (command,) = [
        line.strip() for line in ci.splitlines() if "pytest" in line and not line.startswith("#")
    ]
    readme = [line.split("  #")[0].strip() for b in blocks(README) for line in b.lines]
    assert command in readme, f"README.md does not show the .ci/run test command: {command}"
