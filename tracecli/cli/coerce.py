"""Option values turned into Python values without pydantic, when that is plain.

Typer turns every option's text into its value with a pydantic `TypeAdapter`, built for
each option of the command that runs, even for an option left at its default. Importing
pydantic's schema machinery and building those adapters cost about a third of the start-up
of `tracecli validate FILE` (the call models are built only when a record needs them, so
nothing else in that run needs the machinery). The values tracecli's options take are
plain (a string, a whole or decimal number with a lower bound, one of an enum's values), so
`Plain` answers those itself and hands everything else, and every value it would refuse,
to Typer's own adapter: what a command receives and every error message stay Typer's
(tests/test_cli_coerce.py compares the two on many inputs).

Installed on a command's parameters by `install`; with a Typer whose internals differ
(it is private API) nothing is installed and Typer works as it always did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

try:  # Typer's private coercion API (0.26 and later)
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_choice
except ImportError:  # pragma: no cover - another Typer: its own coercion, unchanged
    RuntimeParam = None  # type: ignore[assignment,misc]

_WHOLE = re.compile(r"[0-9]{1,18}\Z")  # digits only: what int() and pydantic read alike
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?\Z")


def _bounded(value: Any, info: Any) -> bool:
    """Within the option's `min=`/`max=` (pydantic's ge/le); unclamped options only."""
    lo, hi = info.min, info.max
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _plain(annotation: Any, info: Any, value: Any, ctx: Any) -> tuple[bool, Any]:
    """(True, the value) when it is plain, else (False, None): Typer's adapter decides."""
    if info.parser is not None or info.clamp:
        return False, None
    kind = type(value)
    if annotation is str:
        return (True, value) if kind is str else (False, None)
    if annotation is int:
        number = (
            value if kind is int else int(value) if kind is str and _WHOLE.match(value) else None
        )
        return (True, number) if number is not None and _bounded(number, info) else (False, None)
    if annotation is float:
        if kind is float:
            number = value
        elif kind is str and _DECIMAL.match(value):
            number = float(value)
        else:
            return False, None
        return (True, number) if _bounded(number, info) else (False, None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return True, coerce_cli_choice(
                value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            return False, None
    if annotation == list[str] and kind in (list, tuple) and all(type(v) is str for v in value):
        return True, list(value)
    return False, None


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class Plain(RuntimeParam):
        """A parameter's coercion: plain values here, the rest by Typer's adapter."""

        descriptor: TypeDescriptor
        _typer: list[Any] = field(default_factory=list)  # Typer's own, built on first need

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            done, result = _plain(self.annotation, self.parameter_info, value, ctx)
            if done:
                return result
            if not self._typer:
                self._typer.append(build_runtime_param(self.descriptor))
            return self._typer[0]._coerce_value(value, param=param, ctx=ctx)


def install_on(cmd: Any) -> None:
    """Give each parameter of a command the plain coercion, -h/--help included (Click makes
    that option when it is first asked for it)."""
    for param in getattr(cmd, "params", ()):
        install(param)
    made = getattr(cmd, "get_help_option", None)
    if made is None or getattr(made, "installs", False):
        return

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        install(option)
        return option

    get_help_option.installs = True  # type: ignore[attr-defined]
    cmd.get_help_option = get_help_option


def install(param: Any) -> None:
    """Give a Typer parameter the plain coercion (before its first value is processed)."""
    desc = getattr(param, "type_descriptor", None)
    if RuntimeParam is None or desc is None or getattr(param, "_runtime_param", 0) is not None:
        return
    if desc.file_annotation is not None:
        return  # typer.FileText and kin: Typer's own
    param._runtime_param = Plain(
        parameter_info=desc.parameter_info, annotation=desc.annotation, descriptor=desc
    )
