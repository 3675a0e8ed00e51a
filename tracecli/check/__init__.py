"""Record shapes, per-record and cross-record rules, pairing starts with ends, the id index."""
