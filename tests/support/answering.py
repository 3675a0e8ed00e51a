"""An HTTP server on 127.0.0.1 that gives every request the same answer: what a trace
server's URL may lead to instead of one (a redirect, a proxy's error page, a web app).

    with answering(308, {"Location": "https://elsewhere"}, b"", location_path=True) as url:
        ... upload to url ...
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def answering(
    status: int, headers: Mapping[str, str], body: bytes, *, location_path: bool = False
) -> Iterator[str]:
    """Serve `status`, `headers` and `body` to every GET and POST (its body read first); with
    `location_path`, the request's path (and `?key=` of the test's choosing, already in the
    header value's end) goes after the Location's base: `Location + path`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() == "location" and location_path:
                    base, _, query = value.partition("?")
                    value = base + self.path + (f"?{query}" if query else "")
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
