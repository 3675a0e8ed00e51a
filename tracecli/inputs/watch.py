"""What `upload --follow` watches: files, directories and glob patterns, looked at again on
every poll so that new matching files (a rotated log, tomorrow's file) are picked up.

Two parts, so that correctness never depends on file events:
- `Watcher.scan`, the poll: a `stat` per matching file, a snapshot of (path, device, inode,
  size, mtime); the follow loop uploads again when it differs from the last one. It runs at
  least every flush interval whatever else happens, and alone it is the whole story on
  network filesystems (NFS, SMB, FUSE mounts report no events for writes made elsewhere).
- `FileEvents`, the early wake-up: file events (inotify on Linux, through the `watchfiles`
  package) on the folders that hold the inputs set an event the follow loop waits on, so a
  write is looked at within tens of milliseconds instead of up to a flush interval. An event
  only says "look now": the poll decides what changed. When `watchfiles` is not installed or
  its watcher fails (the inotify watch or instance limit, a folder gone as it started), the
  loop keeps polling and says why once.
"""

from __future__ import annotations

import errno
import glob
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, NamedTuple

from tracecli.diagnostics import Diagnostic, Severity, UsageError
from tracecli.inputs.reader import expand_paths
from tracecli.inputs.rotated import RotatedAway, Stamp

_GLOB_CHARS = frozenset("*?[")


FileStamp = Stamp  # what a poll knows of one file


class Snapshot(NamedTuple):
    files: tuple[str, ...]  # the inputs, in the order given (patterns sorted)
    stamps: frozenset[FileStamp]

    @property
    def total_size(self) -> int:
        return sum(s.size for s in self.stamps)


def is_pattern(path: str) -> bool:
    return any(c in _GLOB_CHARS for c in path)


def loop_reason(path: str) -> str | None:
    """`too many levels of symbolic links` when `path` is a link that loops (ELOOP): unlike
    a named file that does not exist yet (it may appear), it never resolves, so following
    it would quietly follow nothing."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = exc.strerror or os.strerror(errno.ELOOP)
            return why[:1].lower() + why[1:]
    return None


def followable(
    paths: Iterable[str], on_diagnostic: Callable[[Diagnostic], None] | None
) -> list[str]:
    """The named paths without the links that loop (ELOOP), each said once as an error: a
    file not there yet is followed (it may appear), a loop never resolves. None left to
    follow: a UsageError (exit 2) naming them, as validate and upload say it."""
    named = list(paths)
    loops = {p: why for p in named if not is_pattern(p) and (why := loop_reason(p))}
    left = [p for p in named if p not in loops]
    if not left:
        raise UsageError("; ".join(f"{p}: {why}" for p, why in loops.items()))
    for p, why in loops.items():
        if on_diagnostic is not None:
            on_diagnostic(
                Diagnostic(p, 0, "", "read-error", Severity.ERROR, f"{why}: not followed")
            )
    return left


AWAY_KEEP = 60.0  # seconds a file rotated away is still followed after its last change


class Watcher:
    """The inputs named by `paths` (files, directories, quoted glob patterns), expanded on
    every `scan`. A named file that does not exist yet is not an error: it may appear.

    A file rotated out of the inputs (renamed to a name none matches, `app.jsonl.1`; the
    copy copytruncate made) stays among the files scanned, before the inputs, until a pass
    shipped it and it has not changed for `keep_away` seconds (`shipped`; see
    `tracecli.inputs.rotated`): the records written to it since the last look are shipped."""

    def __init__(self, paths: Iterable[str], keep_away: float = AWAY_KEEP) -> None:
        self.paths = list(paths)
        self.rotated = RotatedAway(keep_away)

    def expand(self) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()

        def add(items: Iterable[str]) -> None:
            for p in items:
                if p not in seen:
                    seen.add(p)
                    out.append(p)

        for p in self.paths:
            if is_pattern(p):
                matches = sorted(glob.glob(p, recursive=True))
                add(m for m in matches if os.path.isfile(m))
                add(expand_paths([m for m in matches if os.path.isdir(m)], watching=True))
            elif os.path.isdir(p):
                add(expand_paths([p], watching=True))
            elif os.path.isfile(p):
                add([p])
        return out

    def scan(self) -> Snapshot:
        files = self.expand()
        stamps: list[FileStamp] = []
        for f in files:
            try:
                st = os.stat(f)
            except OSError:  # gone between the listing and the stat: the next poll knows
                continue
            stamps.append(FileStamp(f, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        stamps = self.rotated.look(stamps) + stamps
        return Snapshot(tuple(s.path for s in stamps), frozenset(stamps))

    def shipped(self, snap: Snapshot) -> None:
        """A pass shipped `snap` (see `RotatedAway.shipped`)."""
        self.rotated.shipped(snap.stamps)


def whole_lines_end(path: str, size: int, window: int = 1 << 20) -> int:
    """Where the file's last whole line ends, at or before `size`: a last line without its
    newline is still being written and waits for the next look. Reads at most `window`
    bytes from the end; a longer unfinished line is taken as it is (0 when none ends)."""
    if size <= 0:
        return size
    try:
        with open(path, "rb") as f:
            return whole_lines_end_in(f, size, window)
    except OSError:
        return size


def whole_lines_end_in(f: IO[bytes], size: int, window: int = 1 << 20) -> int:
    """`whole_lines_end` of the open file `f` (the file a pass took, whatever its name
    holds now); OSError when it cannot be read."""
    if size <= 0:
        return size
    start = max(0, size - window)
    f.seek(start)
    tail = f.read(size - start)
    if tail.endswith(b"\n"):
        return size
    cut = tail.rfind(b"\n")
    if cut >= 0:
        return start + cut + 1
    return 0 if start == 0 else size


# -- early wake-up on file events --------------------------------------------------------------

DEBOUNCE_MS = 100  # a burst of writes wakes the loop at most this long after its first write
STEP_MS = 30  # ...and this long after its last one, when it is shorter


class WatchRoot(NamedTuple):
    """A folder to receive events for: where an input is, or may appear."""

    path: str  # absolute
    recursive: bool


def watch_roots(paths: Iterable[str]) -> list[WatchRoot]:
    """The existing folders whose events can matter to `paths`: a named file's folder (and
    its link target's folder), a named folder with what is under it, and the fixed part of
    a glob pattern (with what is under it when the pattern spans folders). A folder that does
    not exist yet has no events to give: the poll finds what appears in it."""
    out: dict[WatchRoot, None] = {}

    def add(path: str, recursive: bool) -> None:
        if os.path.isdir(path):
            out[WatchRoot(path, recursive)] = None

    for p in paths:
        a = os.path.abspath(p)
        if is_pattern(p):
            parts = a.split(os.sep)
            fixed = next(i for i, part in enumerate(parts) if is_pattern(part))
            rest = parts[fixed:]
            add(os.sep.join(parts[:fixed]) or os.sep, len(rest) > 1 or "**" in rest[0])
        elif os.path.isdir(a):
            add(a, True)
        else:
            add(os.path.dirname(a), False)
            real = os.path.realpath(a)
            if os.path.dirname(real) != os.path.dirname(a):
                add(os.path.dirname(real), False)
    return list(out)


def _root_key(roots: list[WatchRoot]) -> tuple[tuple[WatchRoot, int, int], ...]:
    """The roots with the identity of each folder: a folder removed and made again needs a
    new watch even at the same path."""
    keyed = []
    for r in roots:
        try:
            st = os.stat(r.path)
        except OSError:
            continue
        keyed.append((r, st.st_dev, st.st_ino))
    return tuple(keyed)


@dataclass(eq=False, slots=True)
class _EventThread:
    """One `watchfiles` watcher (one recursive setting) in a daemon thread, started at once."""

    roots: list[str]
    recursive: bool
    on_change: Callable[[], None]
    on_error: Callable[[BaseException], None]
    stop_event: threading.Event = field(default_factory=threading.Event, init=False)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="tracecli-file-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            import watchfiles

            for _changes in watchfiles.watch(
                *self.roots,
                watch_filter=None,  # any change may matter; the poll decides what did
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=self.stop_event,
                rust_timeout=0,  # no timeouts: watchfiles drops what it holds on one
                raise_interrupt=False,
                recursive=self.recursive,
                force_polling=False,  # polling is ours to choose (and then needs no thread)
                # a root or a folder under it that cannot be watched is an error: with the
                # option on, watchfiles would also pass over a missing root in silence
                ignore_permission_denied=False,
                debug=False,
            ):
                self.on_change()
        except Exception as exc:  # the watcher could not start or died: the poll goes on
            if not self.stop_event.is_set():
                self.on_error(exc)

    def close(self) -> None:
        self.stop_event.set()


class FileEvents:
    """Sets `wake` when something changes in the folders of the inputs. `mode` is "events"
    while that works and "polling" when it does not (then `reason` says why); call `refresh`
    after each poll so that folders that appeared (or were made anew) are watched too."""

    def __init__(self, paths: Iterable[str], wake: threading.Event) -> None:
        self.paths = list(paths)
        self.wake = wake
        self.mode = "events"
        self.reason: str | None = None
        self._key: tuple[tuple[WatchRoot, int, int], ...] | None = None
        self._threads: list[_EventThread] = []
        self._lock = threading.Lock()
        try:
            import watchfiles  # noqa: F401
        except ImportError as exc:
            self._fail(f"the watchfiles package cannot be imported ({exc})")
            return
        self.refresh()

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.mode == "polling":
                return
            self.mode = "polling"
            self.reason = reason
        for t in self._threads:
            t.close()
        self._threads = []
        self.wake.set()  # the loop notices at once

    def _error(self, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError):
            # a folder went away as its watch started (a rotation, a cleanup): the next
            # refresh (within a flush interval) watches what is there then
            self._key = None
            return
        what = str(exc) or type(exc).__name__
        self._fail(f"the file watcher failed ({what})")

    def refresh(self) -> None:
        if self.mode == "polling":
            return
        key = _root_key(watch_roots(self.paths))
        if key == self._key:
            return
        self._key = key
        for t in self._threads:
            t.close()
        self._threads = []
        for recursive in (True, False):
            roots = [r.path for r, _, _ in key if r.recursive is recursive]
            if roots:
                self._threads.append(
                    _EventThread(
                        roots=roots,
                        recursive=recursive,
                        on_change=self.wake.set,
                        on_error=self._error,
                    )
                )

    def close(self) -> None:
        for t in self._threads:
            t.close()
        for t in self._threads:
            t.thread.join(1.0)
        self._threads = []
