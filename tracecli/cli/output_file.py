"""A command's output file (`convert -o`, `export -o`): whole or not at all.

The records go to a temporary file beside it, renamed over it once all are written: a run
interrupted (Ctrl-C, SIGTERM) or failed leaves the file as it was, never the part written
so far, which a later `tracecli upload FILE` would send as if it were the whole.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tracecli import replace_file
from tracecli.cli.common import writing_stdout
from tracecli.diagnostics import UsageError


@contextlib.contextmanager
def output_sink(path: str | None, *, mode: int | None = None) -> Iterator[IO[bytes]]:
    """stdout (None or `-`), or a temporary file beside `path` (permissions `mode`; None:
    as `open` makes a file, 0666 less the umask) renamed over it when all went well (a
    device or FIFO, `-o /dev/null`, is written in place: see `replace_file`)."""
    if path is None or path == "-":
        with writing_stdout():
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"--output {path}: is a directory, expected a file name")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: directory {parent} does not exist")
    if mode is None:
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        out = replace_file.begin(target, mode=mode)
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write: {exc.strerror or exc}") from None
    try:
        yield out.file
        replace_file.publish(out, durable=False)
    except BaseException:
        replace_file.abandon(out)
        raise
