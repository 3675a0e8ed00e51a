"""`tracecli upload` (not written yet)."""
