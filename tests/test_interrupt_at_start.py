"""Ctrl-C while tracecli is still starting (importing its modules, before a command has its
own handlers) ends it with exit 130 and no traceback: a CI job cancelled, or a user's
Ctrl-C, at the very start of a run printed Python's KeyboardInterrupt traceback and ended
by SIGINT. The signal is sent for real, by an import hook, as a given module starts to
load (the moment a Ctrl-C lands is otherwise a race)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.uploadkit import cli_env

HOOK = """
import os, signal, sys
class Hook:
    def find_spec(self, name, path, target=None):
        if name == {module!r}:
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Hook())
sys.argv = ["tracecli", "upload", "--help"]
from tracecli.cli import main
main()
"""


@pytest.mark.parametrize(
    "module", ["tracecli.cli.common", "tracecli.cli.validate_run", "tracecli.cli.root"]
)
def test_ctrl_c_while_tracecli_starts_is_exit_130_without_a_traceback(tmp_path, module):
    r = subprocess.run(
        [sys.executable, "-c", HOOK.format(module=module)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 130, (r.returncode, r.stderr[-2000:])


@pytest.mark.parametrize(
    ("signal_name", "module", "args", "code"),
    [
        ("SIGINT", "tracecli.cli.root", ["upload", "--help"], 130),
        ("SIGTERM", "tracecli.cli.validate_run", ["validate", "x.jsonl"], 143),
    ],
)
def test_a_signal_while_python_m_tracecli_starts_is_its_exit_code(
    tmp_path, signal_name, module, args, code
):
    """The same through `python -m tracecli`, whose exit after a Ctrl-C in code made by
    `exec` CPython turns into a death by SIGINT unless cleared (see tracecli/__main__.py);
    SIGTERM likewise ends with 143. The hook is installed by a sitecustomize module on
    PYTHONPATH, before tracecli runs."""
    site = tmp_path / "site"
    site.mkdir()
    hook = HOOK.format(module=module).split("sys.argv =")[0]
    (site / "sitecustomize.py").write_text(hook.replace("SIGINT", signal_name))
    env = cli_env()
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    r = subprocess.run(
        [sys.executable, "-m", "tracecli", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])


# SIGTERM (a CI job cancelled, systemd, Kubernetes) at the same moments: exit 143, as the
# README's table says, not a death by the signal (-15) before tracecli had handlers.
@pytest.mark.parametrize("module", ["tracecli.cli.common", "tracecli.cli.root"])
def test_sigterm_while_tracecli_starts_is_exit_143_without_a_traceback(tmp_path, module):
    hook = HOOK.format(module=module).replace("SIGINT", "SIGTERM")
    r = subprocess.run(
        [sys.executable, "-c", hook],
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 143, (r.returncode, r.stderr[-2000:])
