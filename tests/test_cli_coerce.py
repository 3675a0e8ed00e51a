"""cli/coerce.py reads option values as Typer's pydantic adapters do, on every option of
every command: the same value for what it takes itself, the adapter's own answer (and its
error message) for everything else."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
import typer.main
from typer._coercion import build_runtime_param
from typer.core import TyperGroup

from tracecli.cli import COMMANDS, app, coerce

TEXTS = ["", "x", " 5 ", "5", "0", "-1", "007", "1_000", "5.0", "0.05", "0.1", "1e3", "nan"]
TEXTS += ["inf", "99999999999999999999", "\uff11\uff12", "text", "TEXT", "json", "auto", "Json"]


def parameters() -> list[tuple[str, Any, Any]]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found = [("(root)", root, p) for p in root.params]
    for name in dict.fromkeys(COMMANDS):
        cmd = root.commands[name]
        subs = [cmd, *getattr(cmd, "commands", {}).values()]
        found += [(f"{name} {p.name}", sub, p) for sub in subs for p in sub.params]
    return found


def answer(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = runtime._coerce_value(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "refused", exc.format_message()
    return type(result).__name__, result


@pytest.mark.parametrize("where,cmd,param", parameters(), ids=lambda v: str(v)[:40])
def test_plain_values_read_as_typer_reads_them(where: str, cmd: Any, param: Any) -> None:
    plain = param._runtime_param
    if plain is None:  # a bool flag not yet asked for a value: Typer's own
        coerce.install(param)
        plain = param._runtime_param
    assert isinstance(plain, coerce.Plain), where
    typer_own = build_runtime_param(param.type_descriptor)
    ctx = cmd.context_class(cmd)
    values: list[Any] = [*TEXTS, 0, 5, -3, 0.5, 2.0, True, None]
    annotation = param.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values += list(annotation) + [m.value.upper() for m in annotation]
    if param.nargs == -1:
        values = [("a", "b"), ["x"], (), ("a", 1)]
    for value in values:
        got = answer(plain, value, param, ctx)
        assert got == answer(typer_own, value, param, ctx), (where, value)
