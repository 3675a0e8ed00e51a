"""Run tracecli on a pseudo-terminal of a given size and read what a person would see.

The child gets a real pty (`pty.fork`) with its window size set (TIOCSWINSZ), so Rich sees a
terminal of `cols` columns as in a person's shell; everything it writes is kept as raw bytes
(what reached the terminal) and fed to `pyte`, a VT100 emulator, whose screen is what was
drawn. `watch` sees the screen after every chunk: a live progress line is read while it is
on screen (it is erased when the upload ends).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pyte = pytest.importorskip("pyte", reason="pyte (the test extra) draws the pty's screen")

ROOT = Path(__file__).resolve().parents[2]
AS_TRACECLI = "import sys; sys.argv[0] = 'tracecli'; from tracecli.cli import main; main()"


@dataclass
class PtyRun:
    code: int
    raw: bytes  # every byte written to the terminal
    screen: list[str]  # the final screen, one string per row (trailing blanks stripped)
    frames: list[list[str]] = field(default_factory=list)  # screens `watch` kept

    def text(self) -> str:
        return "\n".join(self.screen).rstrip("\n")


def pty_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **extra}
    for var in ("COLUMNS", "LINES"):  # the window size says it, as in a person's shell
        if var not in extra:
            env.pop(var, None)
    if "NO_COLOR" not in extra:
        env.pop("NO_COLOR", None)
    return env


def _chunk(fd: int, wait: float) -> bytes | None:
    """What the child wrote within `wait` seconds (b"" if nothing), None once it closed
    the terminal (EIO or end of file)."""
    if not select.select([fd], [], [], wait)[0]:
        return b""
    try:
        return os.read(fd, 65536) or None
    except OSError:  # EIO: the child closed the terminal
        return None


def drain(fd: int, timeout: float, idle: float | None = None) -> bytes:
    """Everything a pty's child still writes: read until it closes the terminal,
    `timeout` seconds pass, or (with `idle`) it writes nothing that long."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = _chunk(fd, idle if idle is not None else 0.5)
        if chunk is None or (not chunk and idle is not None):
            break
        out += chunk
    return out


def _rows(screen: pyte.Screen) -> list[str]:
    return [line.rstrip() for line in screen.display]


def run_on_pty(
    args: list[str],
    *,
    cols: int,
    rows: int = 40,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    watch: Callable[[list[str]], bool] | None = None,
    interrupt_when: Callable[[list[str]], bool] | None = None,
) -> PtyRun:
    """`tracecli ARGS` on a `cols` x `rows` pty; `watch(screen)` True keeps that frame;
    `interrupt_when(screen)` True sends SIGINT once (Ctrl-C)."""
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of this size, then tracecli
        try:
            if cwd is not None:
                os.chdir(cwd)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(sys.executable, [sys.executable, "-c", AS_TRACECLI, *args], env or pty_env())
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    raw = b""
    frames: list[list[str]] = []
    interrupted = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = _chunk(fd, 0.5)
            if chunk is None:
                break
            if not chunk:
                if interrupt_when is not None and not interrupted and interrupt_when(_rows(screen)):
                    os.kill(pid, signal.SIGINT)
                    interrupted = True
                continue
            raw += chunk
            stream.feed(chunk)
            now = _rows(screen)
            if watch is not None and watch(now):
                frames.append(now)
            if interrupt_when is not None and not interrupted and interrupt_when(now):
                os.kill(pid, signal.SIGINT)
                interrupted = True
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return PtyRun(os.waitstatus_to_exitcode(status), raw, _rows(screen), frames)
