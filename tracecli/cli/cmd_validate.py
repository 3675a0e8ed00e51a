"""`tracecli validate` (not written yet)."""
