"""The embedded SQLite trace store and Weave's call-query language over it."""
