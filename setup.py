"""The optional compiled accelerator of `validate` (`tracecli/_speedups.c`).

Everything else about the package is in pyproject.toml. `optional=True`: where the
extension cannot be built (no C compiler, no Python headers) the install goes on without
it, and tracecli runs its pure-Python code instead (`upload/typed_lines.block_bytes`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tracecli._speedups", ["tracecli/_speedups.c"], optional=True),
    ]
)
