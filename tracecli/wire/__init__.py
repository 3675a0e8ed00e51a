"""Bytes on the wire: exact JSON numbers, Weave request bodies and chunks of calls."""
