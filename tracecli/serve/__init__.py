"""`tracecli serve`: the embedded store behind Weave's trace-server routes (ASGI)."""
