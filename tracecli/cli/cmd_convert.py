"""`tracecli convert` (not written yet)."""
