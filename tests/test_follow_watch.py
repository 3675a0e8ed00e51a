"""How `upload --follow` notices changes: file events (watchfiles: inotify on Linux) wake the
loop early, polling every --flush-interval is the fallback and the upper bound. Both paths
must ship the same: appends, new files matching a glob, rename rotation, copytruncate,
deletion. End to end against `tracecli serve` on 127.0.0.1 behind the counting proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import line, received, start_follower, stop, wait_for
from tests.support.uploadkit import (
    cli_env,
    diff_calls,
    gen_calls,
    read_back,
    tracecli,
    tracecli_serve,
)
from tracecli.inputs.watch import FileEvents, WatchRoot, _EventThread, watch_roots


def whole(calls: list) -> bytes:
    return b"".join(line("call", {**s, **e}) for s, e in calls)


# -- where events are asked for (pure) ---------------------------------------------------------


def test_watch_roots_are_the_folders_that_hold_or_may_hold_the_inputs(tmp_path: Path) -> None:
    (tmp_path / "logs" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "real.jsonl").write_text("")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "elsewhere" / "real.jsonl")
    t = str(tmp_path)
    assert watch_roots([f"{t}/logs"]) == [WatchRoot(f"{t}/logs", True)]
    assert watch_roots([f"{t}/logs/app.jsonl"]) == [WatchRoot(f"{t}/logs", False)]
    assert watch_roots([f"{t}/logs/*.jsonl"]) == [WatchRoot(f"{t}/logs", False)]
    assert watch_roots([f"{t}/logs/*/x.jsonl"]) == [WatchRoot(f"{t}/logs", True)]
    assert watch_roots([f"{t}/logs/**"]) == [WatchRoot(f"{t}/logs", True)]
    # a link is watched where it is and where its target is written
    assert watch_roots([f"{t}/link.jsonl"]) == [
        WatchRoot(t, False),
        WatchRoot(f"{t}/elsewhere", False),
    ]
    # a folder that does not exist yet gives no events: the poll finds what appears there
    assert watch_roots([f"{t}/nope/app.jsonl", f"{t}/nope/*.jsonl"]) == []


# -- the early wake-up -------------------------------------------------------------------------


@pytest.fixture
def events_available() -> None:
    pytest.importorskip("watchfiles", reason="watchfiles is not installed: no file events")


def test_a_write_wakes_the_loop_and_a_new_folder_is_watched_after_refresh(
    tmp_path: Path, events_available: None
) -> None:
    wake = threading.Event()
    events = FileEvents([str(tmp_path / "logs" / "*.jsonl")], wake)
    try:
        assert events.mode == "events" and events._threads == []  # no folder yet
        (tmp_path / "logs").mkdir()
        events.refresh()
        assert len(events._threads) == 1
        deadline = time.monotonic() + 10
        while not wake.is_set() and time.monotonic() < deadline:
            wake.clear()
            (tmp_path / "logs" / "app.jsonl").write_text("{}\n")
            wake.wait(0.5)
        assert wake.is_set(), "no event within 10 s"
    finally:
        events.close()
    assert events.mode == "events" and events.reason is None


def test_a_watcher_that_fails_leaves_the_loop_polling_and_says_why(
    tmp_path: Path, events_available: None
) -> None:
    errors: list[BaseException] = []
    t = _EventThread([str(tmp_path / "missing")], False, lambda: None, errors.append)
    t.thread.join(10)
    assert [type(e) for e in errors] == [FileNotFoundError]  # watchfiles' own refusal

    wake = threading.Event()
    (tmp_path / "logs").mkdir()
    events = FileEvents([str(tmp_path / "logs")], wake)
    try:
        events._error(FileNotFoundError("gone"))  # a folder that went as it started: again
        assert events.mode == "events"
        events._error(OSError(28, "inotify watch limit reached"))  # what the thread reports
        assert events.mode == "polling" and "inotify watch limit" in (events.reason or "")
        assert wake.is_set() and events._threads == []
        events.refresh()
        assert events._threads == []  # no second try: polling for the rest of the follow
    finally:
        events.close()


# -- end to end: both paths ship the same ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("watching", ["events", "polling"])
def test_both_paths_ship_appends_new_files_rotations_and_deletions_once(
    tmp_path: Path, watching: str
) -> None:
    if watching == "events":
        pytest.importorskip("watchfiles", reason="watchfiles is not installed: no file events")
        # a look every 20 s only: steps seen in a few seconds were seen through events
        extra: tuple[str, ...] = ("--flush-interval", "20")
    else:
        extra = ("--poll", "--flush-interval", "0.5")
    calls = gen_calls(150, seed=71)
    logs = tmp_path / "logs"
    logs.mkdir()
    app, other = logs / "app.jsonl", logs / "other.jsonl"
    app.write_bytes(whole(calls[:40]))
    took: list[float] = []
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, f"{logs}/*.jsonl", extra=extra)

        def shipped(n: int, what: str) -> None:
            t0 = time.monotonic()
            try:
                wait_for(lambda: len(received(proxy)) == n, 60, proc)
            except AssertionError as exc:
                err = (tmp_path / "follow0.err").read_text()[-2000:]
                raise AssertionError(
                    f"{what}: {exc}; {len(received(proxy))} of {n}\n{err}"
                ) from exc
            took.append(time.monotonic() - t0)

        try:
            shipped(40, "the first look")
            with app.open("ab") as f:  # an append
                f.write(whole(calls[40:60]))
            shipped(60, "an append")
            other.write_bytes(whole(calls[60:80]))  # a new file matching the glob
            shipped(80, "a new file")
            app.rename(logs / "app-1.jsonl")  # rotation by rename...
            app.write_bytes(whole(calls[80:100]))  # ...and a new file at the same path
            shipped(100, "rotation by rename")
            with other.open("ab") as f:
                f.write(whole(calls[100:110]))
            shutil.copyfile(other, logs / "other-1.jsonl")  # copytruncate
            with other.open("r+b") as f:
                f.truncate(0)
            other.write_bytes(whole(calls[110:130]))
            shipped(130, "copytruncate")
            os.unlink(logs / "app-1.jsonl")  # a finished file deleted
            with app.open("ab") as f:
                f.write(whole(calls[130:]))
            shipped(150, "an append after a deletion")
        finally:
            code = stop(proc)
        assert code == 0, (tmp_path / "follow0.err").read_text()
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
    status = [orjson.loads(x) for x in (tmp_path / "follow0.out").read_bytes().splitlines()]
    assert status[-1]["watching"] == watching
    assert status[-1]["calls_shipped"] == 150
    assert "no file events" not in (tmp_path / "follow0.err").read_text()
    # most steps took far less than a flush interval of 20 s (a generous bound: about 0.1 s
    # is usual); polling every 0.5 s passes it too
    assert sorted(took[1:])[len(took[1:]) // 2] < 5.0, took


@pytest.mark.slow
def test_without_watchfiles_it_polls_and_says_so_once(tmp_path: Path) -> None:
    """A Python where watchfiles cannot be imported (a module of that name that fails)."""
    broken = tmp_path / "broken" / "watchfiles"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no watchfiles here')\n")
    calls = gen_calls(20, seed=72)
    app = tmp_path / "app.jsonl"
    app.write_bytes(whole(calls[:10]))
    env = cli_env()
    env["PYTHONPATH"] = f"{broken.parent}{os.pathsep}{env['PYTHONPATH']}"
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        args = ["upload", "--follow", str(app), "--server", proxy.url, "--flush-interval", "0.5"]
        proc = subprocess.Popen(
            tracecli(*args),
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "err").open("wb"),
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
        try:
            wait_for(lambda: len(received(proxy)) == 10, 60, proc)
            with app.open("ab") as f:
                f.write(whole(calls[10:]))
            wait_for(lambda: len(received(proxy)) == 20, 30, proc)
        finally:
            assert stop(proc) == 0
        assert proxy.duplicates() == 0
    err = (tmp_path / "err").read_text()
    assert err.count("no file events") == 1, err
    assert "watchfiles package cannot be imported" in err and "every 0.5 s" in err
    assert "Traceback" not in err
