"""`tracecli serve` (not written yet)."""
