"""A secret that never prints by accident: pydantic's `SecretStr`, without pydantic.

Every command that reads a setting holds its API key in one, and importing pydantic for
that alone cost an upload to a server about a fifth of its start-up (~35 ms; the models
are for the records the fast path does not vouch for, and most runs never build one).
Same methods and printed forms as pydantic's, and pydantic's own `SecretStr` counts as
one (`isinstance`), so a library caller may pass either.
"""

from __future__ import annotations

from abc import ABC
from typing import Any

HIDDEN = "**********"


class SecretStr(ABC):  # noqa: B024 (an ABC for __subclasshook__ only: nothing to override)
    """A string whose `str` and `repr` hide it; `get_secret_value()` gives it."""

    __slots__ = ("_secret_value",)

    def __init__(self, secret_value: str) -> None:
        self._secret_value = secret_value

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        """pydantic's SecretStr (or any class that keeps a secret string the same way) is one."""
        return any("get_secret_value" in vars(k) for k in other.__mro__) or NotImplemented

    def get_secret_value(self) -> str:
        return self._secret_value

    def __str__(self) -> str:
        return HIDDEN if self._secret_value else ""

    def __repr__(self) -> str:
        return f"SecretStr('{self}')"

    def __len__(self) -> int:
        return len(self._secret_value)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SecretStr) and self.get_secret_value() == other.get_secret_value()

    def __hash__(self) -> int:
        return hash(self._secret_value)
