"""`tracecli schema` (not written yet)."""
