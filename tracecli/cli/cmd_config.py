"""`tracecli config` (not written yet)."""
