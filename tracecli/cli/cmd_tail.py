"""`tracecli tail` (not written yet)."""
