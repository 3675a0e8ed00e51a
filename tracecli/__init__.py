"""tracecli: move LLM trace records from files into trace servers, reliably."""

__version__ = "0.1.0"
