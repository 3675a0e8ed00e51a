"""The one shape every problem takes, from a JSON syntax error to a 422 from the server.

Keeping a single type means `validate`, `upload` and the rejected-records file all report
problems the same way: a file, a 1-based line, a dotted field path, a stable code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record starts: the file as given by the user and its 1-based line."""

    path: str
    line: int


# codes of problems with a whole file (from some line on), not with one record
FILE_CODES = frozenset({"read-error", "file-encoding", "file-format"})


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str
    line: int
    field: str
    code: str
    severity: Severity
    message: str

    @classmethod
    def at(
        cls,
        loc: Location,
        code: str,
        message: str,
        field: str = "",
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        return cls(loc.path, loc.line, field, code, severity, message)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_error(self) -> Diagnostic:
        """`--strict` turns warnings into errors without losing what they said."""
        if self.is_error:
            return self
        return Diagnostic(self.path, self.line, self.field, self.code, Severity.ERROR, self.message)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        return d

    def one_line(self) -> str:
        """`path:line: severity: field: message`, the format editors and CI logs understand.

        Always five parts, so a tool can split on ": ": a problem of no one field (a line
        that is not JSON, a file that cannot be read) names what it is about instead.
        """
        field = self.field or ("(file)" if self.code in FILE_CODES else "(record)")
        return f"{self.path}:{self.line}: {self.severity.value}: {field}: {self.message}"


class TracecliError(Exception):
    """Base of every error the CLI turns into one line on stderr and an exit code.

    `exit_code` follows the agreed table: 1 for bad input or rejected records,
    2 for usage/configuration problems (bad flag, missing key, unreachable server).
    """

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(TracecliError):
    exit_code = 2


def cannot_write(what: str, path: object, exc: BaseException) -> str:
    """The one wording for a file of a run that can no longer be written (the resume
    journal, the embedded store, the Freeplay ledger: a disk filled since it was opened):
    the run stops with it, and the same command resumes once there is room."""
    return (
        f"cannot write the {what} {path}: {exc}; once it can be written (free some space), "
        "run the same command again to resume"
    )
