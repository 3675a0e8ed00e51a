"""Reading trace files: streaming readers for every input format and the worker pool."""
