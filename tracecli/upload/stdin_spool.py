"""A pipe (stdin, or a FIFO given by name) copied to a spool file as it comes, for
`upload/stdin_live.py`: stdin cannot be read twice, so what a run reads of it is kept on
disk, where the passes of a live upload read it and where what the server could not take
stays for the next run."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import orjson

from tracecli.config.paths import state_dir
from tracecli.inputs.streams import BOM, GZIP_MAGIC, STDIN, STDIN_NAME
from tracecli.upload.report import UploadOptions

READ_BYTES = 1 << 16


class Piped(NamedTuple):
    """What is read: stdin or a named pipe (a FIFO), and how messages name it."""

    path: str  # "-" or the FIFO's path
    name: str  # "<stdin>" or the path, as diagnostics say it
    said: str  # "stdin" or the path, as the last line says it


def live_source(paths: Sequence[str], opts: UploadOptions) -> Piped | None:
    """The pipe when the run reads only one, stdin or a FIFO given by name (or a socket
    on stdin), and may send as it reads: not a dry run nor --strict (they need the whole
    input), nor --follow."""
    if len(paths) != 1 or opts.dry_run or opts.strict or opts.follow:
        return None
    path = paths[0]
    try:
        if path == STDIN:
            mode = os.fstat(sys.stdin.fileno()).st_mode
            piped = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
            return Piped(STDIN, STDIN_NAME, "stdin") if piped else None
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return Piped(path, path, path)
    except (OSError, ValueError, AttributeError):
        pass
    return None


class Spool:
    """The pipe copied to a file as it comes, by a thread (os.read returns what the pipe
    holds: nothing waits for a block to fill)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self.fd = fd
        self.size = 0
        self.eof = threading.Event()
        self.error: str | None = None
        self.last_data = time.monotonic()
        self.lock = threading.Lock()
        self.head = b""
        self.last_byte = b""
        self.closed = False
        self._out = os.open(path, os.O_WRONLY | os.O_APPEND)  # made by `spool_path`
        self._thread = threading.Thread(target=self._copy, name="stdin-spool", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            while True:
                data = os.read(self.fd, READ_BYTES)
                if not data:
                    break
                with self.lock:
                    if self.closed:  # (its descriptor may be another file's by now)
                        break
                    os.write(self._out, data)
                    self.size += len(data)
                    self.last_byte = data[-1:]
                    if len(self.head) < 4096:
                        self.head += data[: 4096 - len(self.head)]
                    self.last_data = time.monotonic()
        except OSError as exc:
            self.error = exc.strerror or str(exc)
        finally:
            self.eof.set()

    def end_line(self) -> None:
        """Make the spool end with a newline: a last line the writer left unterminated is
        read (and sent or rejected) rather than held as half written."""
        with self.lock:
            if self.size and self.last_byte != b"\n":
                os.write(self._out, b"\n")
                self.size += 1
                self.last_byte = b"\n"

    def close(self) -> None:
        with self.lock, contextlib.suppress(OSError):
            if not self.closed:
                self.closed = True
                os.close(self._out)


def whole_json_line(head: bytes) -> bool | None:
    """Whether the spool holds JSON that can be sent as it comes: JSON lines (the first
    line a whole object), or a JSON array or pretty-printed records, which `--follow`
    passes read up to the last whole record; None while that is not known yet (no line
    is whole). Not gzip nor anything else (YAML, CSV): those are read to their end."""
    if head[:2] == GZIP_MAGIC:
        return False
    text = head.removeprefix(BOM).lstrip()
    if text[:1] in (b"[", b"{") and text[:2] != b"{}" and b"\n" in text:
        first = text[: text.find(b"\n")].strip()
        if first in (b"[", b"{"):
            return True
    end = text.find(b"\n")
    if end < 0:
        return None
    try:
        return isinstance(orjson.loads(text[:end]), (dict, list))
    except orjson.JSONDecodeError:
        return text[:1] in (b"[", b"{")  # an array or a record going on over lines


def spool_path() -> Path:
    """A new spool file of this run's own (0600, in a 0700 folder of the state folder)."""
    folder = state_dir() / "stdin"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"stdin-{stamp}-{os.getpid()}.jsonl"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # (fails here, if)
    return path
