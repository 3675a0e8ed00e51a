"""Keep API keys out of everything tracecli prints, logs or writes.

A key can leak in forms that do not look like it: inside a Basic auth header (base64 of
"api:KEY"), URL-quoted in a URL's userinfo, or echoed by a server in an error body. The
`Redactor` knows those forms and replaces each with `***`; the logging filter applies it to
every record a handler emits, so even a third-party library's debug line cannot carry a key.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
_MIN_SECRET = 4  # shorter "keys" would mask ordinary words


def secret_forms(secret: str) -> set[str]:
    """Every spelling of `secret` that could end up in text we produce."""
    forms = {secret, quote(secret, safe=""), quote(secret)}
    # as it looks inside a JSON string (some servers escape '/', all escape '"' and '\\')
    escaped = json.dumps(secret)[1:-1]
    forms |= {escaped, escaped.replace("/", "\\/")}
    for user in ("api", "", "user"):
        raw = f"{user}:{secret}".encode()
        forms.add(base64.b64encode(raw).decode("ascii"))
        forms.add(base64.urlsafe_b64encode(raw).decode("ascii"))
    forms.add(base64.b64encode(secret.encode()).decode("ascii"))
    # base64 without padding ('=' may be cut off or URL-quoted)
    forms |= {f.rstrip("=") for f in list(forms) if f.endswith("=")}
    return {f for f in forms if len(f) >= _MIN_SECRET}


class Redactor:
    """Replaces the known secrets (in all their forms) in text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._forms: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _MIN_SECRET:
            return
        # longest first, so a base64 form is masked whole before a shorter form inside it
        self._forms = sorted(set(self._forms) | secret_forms(secret), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


class RedactFilter(logging.Filter):
    """A logging filter that renders each record and masks secrets in the result.

    Put it on handlers (filters on a logger do not apply to its children's records).
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record as it is
            return True
        clean = self.redactor(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, masked, so the formatter does not re-render it raw.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor(text)
            record.exc_info = None
        return True


def protect_logging(redactor: Redactor, logger: logging.Logger | None = None) -> None:
    """Attach a RedactFilter to every handler of `logger` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter(redactor))
