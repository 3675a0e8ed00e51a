"""Running `tracecli serve`: a listening socket made for low latency, uvicorn started on
it, and a clean stop (exit 0, the store closed) on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable

from tracecli.diagnostics import TracecliError, UsageError
from tracecli.serve.app import create_app
from tracecli.store.db import Store

DEFAULT_PORT = 6345


def bind(host: str, port: int) -> socket.socket:
    """A listening socket made as IPPROTO_TCP with TCP_NODELAY.

    asyncio only sets TCP_NODELAY on accepted sockets whose protocol is IPPROTO_TCP; a
    plain `socket.socket()` has protocol 0, and every response then waits ~44 ms for
    Nagle / delayed ACK (../shared/tools/bench/README.md).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback(sock: socket.socket) -> bool:
    try:
        return ipaddress.ip_address(sock.getsockname()[0]).is_loopback
    except ValueError:
        return False


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _Stop(Exception):
    pass


class _QuietShutdown(logging.Filter):
    """Drops uvicorn's report of requests it cancels when the graceful shutdown times out
    (a client that sent half a request): a Ctrl-C is not an error, and the request log
    already says which request was cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            return False
        return not str(record.msg).startswith("Cancel %s running task")


def serve(
    db: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
    log: Callable[[str], None] = _stderr_line,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the store at `db` until Ctrl-C or SIGTERM; returns after a clean shutdown."""
    import uvicorn

    store = Store(db)
    try:
        sock = bind(host, port)
    except TracecliError:
        store.close()
        raise

    def _term(signum: int, frame: object) -> None:
        raise _Stop

    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
        previous = signal.signal(signal.SIGTERM, _term)
    quiet = _QuietShutdown()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(quiet)
    # From here on a Ctrl-C or SIGTERM, even before uvicorn takes over the signals, is a
    # clean stop (exit 0), never a traceback or a 130.
    try:
        app = create_app(store, api_key=api_key, log=log)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,  # Ctrl-C never waits long on a slow client
        )
        server = uvicorn.Server(config)
        url = url_of(sock)
        log(
            f"tracecli serve: listening on {url} (store: {db}; "
            f"auth: {'API key required' if api_key else 'none'}); Ctrl-C to stop"
        )
        if not api_key and not _loopback(sock):
            log(
                "tracecli serve: warning: listening beyond this machine with no API key: "
                "anyone who can reach it can read and write the store (pass --api-key)"
            )
        if on_ready is not None:
            on_ready(url)
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        uvicorn_log.removeFilter(quiet)
        sock.close()
        store.close()
        log("tracecli serve: stopped")
