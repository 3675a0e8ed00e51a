"""Weave's picks for one plan, written out as one function (`tracecli.otel.weave_keys.picks`).

A plan (`weave_keys._plan`) lists, for each group of weave's keys, the names and the paths
that may hold a value for a span's set of attribute keys. `picks` walks it: a loop over the
groups, their names, each name's paths and each path's parts, with a test of the type met
at every step (~12 paths a span). The spans of an instrumentation share a few plans, so
for a plan met twice the walk is written out once, as code: each path a chain of `get`s,
the first truthy value of a name kept (through its handler), the in-place conversion of
each group's result called where the loop calls it, in the same order. No key text goes
into the code: names and handlers are read from a tuple by position, and weave's own paths
are written as literals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracecli.otel.nesting import try_numeric_keys_to_list

Picker = Callable[[dict[str, Any]], list[dict[str, Any]]]


def compile_picks(plans: list[list[tuple[str | None, list[tuple[str, list[str], Any]]]]]) -> Picker:
    """The function `picks` runs for these plans (one per key group, in order).

    Walking a path: weave's paths have no digit parts (a test holds it), so a list met on
    the way ends it as anything else but an object does (None); a missing part is None,
    which ends it too. Written as one subscript chain (`a["gen_ai"]["usage"]...`): the
    values met are JSON's (objects, lists, strings, numbers, booleans, None) or bytes,
    which a string subscript refuses with a TypeError, all but objects, and an object a
    missing key with a KeyError. The parts are weave's own key text (this module's
    constants, never a span's), written as literals."""
    names: list[Any] = []  # the names, parts and handlers the code reads by position

    def ref(x: Any) -> str:
        names.append(x)
        return f"T[{len(names) - 1}]"

    lines = ["def picks(a):", "    out = []"]
    for plan in plans:
        lines.append("    r = {}")
        for name, steps in plan:
            indent = "    "
            for n, (key, parts, handler) in enumerate(steps):
                path = "".join(f"[{part!r}]" for part in parts)
                lines += [
                    f"{indent}try:",
                    f"{indent}    v = a{path}",
                    f"{indent}except (KeyError, TypeError):",  # (missing; not an object)
                    f"{indent}    v = None",
                ]
                value = f"{ref(handler)}(v)" if handler else "v"
                lines += [
                    f"{indent}if v:",
                    f"{indent}    r[{ref(key if name is None else name)}] = {value}",
                ]
                if n < len(steps) - 1:
                    lines.append(f"{indent}else:")
                    indent += "    "
        # the conversion changes only objects held in the result (its own keys, weave's
        # names and keys, are never digits): called where it has one to walk
        lines += [
            "    for x in r.values():",
            "        if type(x) is dict:",
            "            NUMERIC(r)",
            "            break",
            "    out.append(r)",
        ]
    lines.append("    return out")
    scope: dict[str, Any] = {
        "__builtins__": {"KeyError": KeyError, "TypeError": TypeError, "type": type, "dict": dict},
        "T": tuple(names),
        "NUMERIC": try_numeric_keys_to_list,  # (weave discards its result; its mutations stay)
    }
    exec("\n".join(lines), scope)
    picker: Picker = scope["picks"]
    return picker
