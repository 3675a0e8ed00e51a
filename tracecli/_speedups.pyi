# The compiled accelerator (tracecli/_speedups.c), optional: see upload/typed_lines.py.

def scan_block(data: bytes, deep: int, /) -> tuple[bool, bool, list[int], list[int]]:
    """(refs, text, numbers, deep): `typed_lines.block_bytes_py`'s search in one pass."""
