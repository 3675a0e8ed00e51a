"""What every run's report shares: the diagnostics it found, counted and listed, and its
fields as the report's JSON gives them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracecli.diagnostics import Diagnostic


@dataclass(kw_only=True)
class Findings:
    """Errors and warnings counted exactly; `diagnostics` lists them (maybe capped)."""

    errors: int = 0
    warnings: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def fields_dict(self, names: str) -> dict[str, Any]:
        """The fields named (space-separated) in that order, as JSON values: the
        diagnostics as dicts, the rest as they are."""
        return {
            n: [d.to_dict() for d in self.diagnostics] if n == "diagnostics" else getattr(self, n)
            for n in names.split()
        }
