"""The pipeline: read, check, pair, encode, chunk, send, journal; validate and convert."""
