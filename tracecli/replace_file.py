"""Replacing a file the user named, whole or not at all, without replacing what is not a file.

tracecli writes its outputs (`convert -o`, the rejected-records file, the netrc file) to a
temporary file beside the target and renames it over the target at the end, so a reader
never sees half a file and a crash leaves the old one. But a rename replaces the directory
entry itself, whatever it was:
- named `/dev/null`, `/dev/stdout` or a FIFO, it would put a regular file in its place (as
  root, in /dev: every program's /dev/null became a file that collects their output; as
  anyone else, the temporary file cannot be made there and the run fails);
- named through a symbolic link (a dotfiles-managed ~/.netrc, an output path linked into
  a shared folder), it would replace the link with a file and leave the linked file old.

So a target that exists and is not a regular file is opened and written in place (there
is nothing to keep whole: a device or a pipe has no old content), and a link is followed
to the file it names, which is then replaced beside itself.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, NamedTuple

BUFFER = 1 << 16


class Pending(NamedTuple):
    """An output being written: `tmp` is renamed over `target` by `publish`, or is None for
    a target written in place (a device, a FIFO)."""

    file: IO[bytes]
    tmp: Path | None
    target: Path


def is_special(path: str | os.PathLike[str]) -> bool:
    """True for an existing target that is not a regular file (after links): a device, a
    FIFO, a socket. Such a target has no content to keep, replace or call stale."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def begin(path: str | os.PathLike[str], *, mode: int) -> Pending:
    """Open the output for `path`: a temporary file (permissions `mode`) beside the file
    that `path` names after links, or `path` itself when it is a device or a FIFO.
    OSError when neither can be opened (the caller words it for its option)."""
    if is_special(path):
        return Pending(open(path, "wb", buffering=BUFFER), None, Path(path))
    target = Path(os.path.realpath(path))
    _sweep(target)
    prefix = f".{target.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        return Pending(os.fdopen(fd, "wb", buffering=BUFFER), Path(tmp), target)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep(target: Path) -> None:
    """Remove the temporary files of earlier writers of `target` that were killed (`kill
    -9`, a crash) before they could publish or abandon them: each names its process, and
    one whose process is gone would otherwise stay, a private copy, one per killed run."""
    for old in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = old.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            old.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no way to ask: keep its file
        return True
    return True


def publish(pending: Pending, *, durable: bool = True) -> None:
    """Finish the output: flushed (and with `durable`, on disk before the rename, and the
    rename itself on disk), then renamed over the target. A device or FIFO is just flushed
    and closed."""
    fh = pending.file
    try:
        fh.flush()
        if durable and pending.tmp is not None:
            os.fsync(fh.fileno())
    finally:
        fh.close()
    if pending.tmp is None:
        return
    os.replace(pending.tmp, pending.target)
    if durable:
        fsync_dir(pending.target)


def abandon(pending: Pending) -> None:
    """Drop the output: the temporary file is removed and the target left as it was."""
    with contextlib.suppress(OSError):
        pending.file.close()
    if pending.tmp is not None:
        pending.tmp.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path`'s folder durable (best effort: not every system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
