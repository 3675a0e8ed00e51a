"""YAML's scalars read as JSON would carry them, where YAML 1.1 (PyYAML's) reads them
otherwise than the YAML 1.2 writers and every YAML-to-JSON tool do.

- A float with an exponent but no dot or no exponent sign (`1e-07`, `6.02e23`): Go's
  yaml.v3 and Rust's serde_yaml write floats so, YAML 1.2 and JSON read them as numbers;
  YAML 1.1 read them as strings, so the call stored `"1e-07"`.
- A key that is not a string (`200: ok`, `true: x`, `null: y`, `2.5: z`): JSON's keys are
  strings, and `json.dumps`, `yq -o json` and the weave SDK (for a dict's keys) spell them
  `"200"`, `"true"`, `"null"`, `"2.5"`. YAML 1.1 makes them numbers, booleans and None: the
  record was refused ("Input should be a valid string"), and `true` beside `1` was one
  key (Python's True == 1), the other value lost.
- U+0085 (NEL), U+2028 and U+2029 in the text: line breaks to YAML 1.1 (not to YAML 1.2 or
  JSON), so NEL was folded to a space inside a string, the spaces around U+2028 dropped,
  and a flow mapping's line broken (`{"t": "a<NEL>b"}`, a JSON line in a .yaml file), the
  record with it. They are handed to the parser as stand-ins (`TO_STAND_IN`) and put back
  in the strings built (`restore_breaks`)."""

from __future__ import annotations

import json
import re
from typing import Any

# YAML 1.2's (core schema) floats with an exponent, underscores as YAML 1.1 allows them:
# added to YAML 1.1's float resolver, whose own forms all stay floats.
EXPONENT_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$""", re.X
)

Resolvers = dict[str, list[tuple[str, re.Pattern[str]]]]


def with_exponent_floats(resolvers: Resolvers) -> Resolvers:
    """A loader's implicit resolvers (first character -> (tag, pattern) list) with
    `EXPONENT_FLOAT` tried after the others: what they read stays as they read it."""
    out = {k: list(v) for k, v in resolvers.items()}
    for first in "-+0123456789.":
        out.setdefault(first, []).append(("tag:yaml.org,2002:float", EXPONENT_FLOAT))
    return out


def json_key(key: Any) -> Any:
    """A mapping key as JSON spells it: a number, a boolean or null as its JSON text; a
    string (and anything else, said by the caller) unchanged."""
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return key


# Unicode's noncharacters U+FDD0-U+FDEF are kept for a program's internal use: no text holds
# them
TO_STAND_IN = str.maketrans({"\x85": "\ufdd0", "\u2028": "\ufdd1", "\u2029": "\ufdd2"})
FROM_STAND_IN = str.maketrans({"\ufdd0": "\x85", "\ufdd1": "\u2028", "\ufdd2": "\u2029"})


def stand_in_breaks(line: str) -> str:
    """`line` with YAML 1.1's other line breaks (NEL, LS, PS) as their stand-ins."""
    return line if line.isascii() else line.translate(TO_STAND_IN)


def restore_breaks(value: Any) -> Any:
    """`value` with the stand-ins in its strings (keys too) put back as they were written."""
    if isinstance(value, str):
        return value.translate(FROM_STAND_IN)
    if isinstance(value, dict):
        return {restore_breaks(k): restore_breaks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_breaks(v) for v in value]
    return value
