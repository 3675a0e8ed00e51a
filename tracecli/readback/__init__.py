"""Reading calls back from a Weave server or the store: `tail` and `export`."""
