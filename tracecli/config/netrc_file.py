"""~/.netrc: where `wandb login` keeps W&B keys, read and updated in place.

Reading uses the standard library's parser. Writing edits the text rather than re-serialising
the parsed entries, because a .netrc is shared with curl, git, ftp and wandb: its other
entries, comments, `macdef` bodies and layout must come through a login untouched.
"""

from __future__ import annotations

import netrc
import os
import re
from pathlib import Path
from typing import NamedTuple

from tracecli import replace_file

_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\])*"|[^\s]+')


class NetrcError(Exception):
    """The file exists but cannot be parsed or written; the message names it."""


def netrc_path() -> Path:
    """`$NETRC` (as curl and Python honour it) or `~/.netrc`."""
    env = os.environ.get("NETRC")
    return Path(env).expanduser() if env else Path.home() / ".netrc"


def lookup(host: str, path: Path | None = None) -> str | None:
    """The password stored for `host`, None when there is none. Raises NetrcError when the
    file exists but does not parse, so the caller can say why a key was not found."""
    path = path or netrc_path()
    if not path.is_file():
        return None
    try:
        auth = netrc.netrc(str(path)).authenticators(host)
    except netrc.NetrcParseError as exc:
        raise NetrcError(f"{path}: line {exc.lineno}: {exc.msg}") from None
    except OSError as exc:
        raise NetrcError(f"{path}: {exc.strerror or exc}") from None
    return auth[2] if auth and auth[2] else None


class _Token(NamedTuple):
    value: str
    start: int
    end: int


def _tokens(text: str) -> list[_Token]:
    """Tokens with their offsets; comments and macdef bodies are skipped, as netrc does."""
    out: list[_Token] = []
    pos = 0
    in_macdef = False
    for line in text.splitlines(keepends=True):
        if in_macdef:
            if not line.strip():
                in_macdef = False
            pos += len(line)
            continue
        for m in _TOKEN_RE.finditer(line):
            if m.group().startswith("#"):
                break
            out.append(_Token(m.group(), pos + m.start(), pos + m.end()))
        if len(out) >= 2 and out[-2].value == "macdef" and out[-2].start >= pos:
            in_macdef = True
        pos += len(line)
    return out


def check_storable(password: str) -> None:
    if not password or any(c.isspace() for c in password) or password[0] in "#\"'":
        raise NetrcError("the key cannot be stored in .netrc (it has spaces or quotes)")


def update_text(text: str, host: str, password: str, login: str = "user") -> str:
    """`text` with `host`'s password set: every entry for the host is updated in place
    (readers differ on first or last match), or a new entry is appended."""
    check_storable(password)
    tokens = _tokens(text)
    edits: list[tuple[int, int, str]] = []
    i = 0
    found = False
    while i < len(tokens):
        if tokens[i].value != "machine" or i + 1 >= len(tokens):
            i += 1
            continue
        name = tokens[i + 1].value.strip('"')
        j = i + 2
        password_at: _Token | None = None
        last = tokens[i + 1]
        while j < len(tokens) and tokens[j].value not in ("machine", "default", "macdef"):
            if tokens[j].value == "password" and j + 1 < len(tokens):
                password_at = tokens[j + 1]
            last = tokens[j]
            j += 1
        if name.lower() == host.lower():
            found = True
            if password_at is not None:
                edits.append((password_at.start, password_at.end, password))
            else:
                edits.append((last.end, last.end, f" password {password}"))
        i = j
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    if not found:
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"machine {host}\n  login {login}\n  password {password}\n"
    return text


def store(host: str, password: str, path: Path | None = None) -> Path:
    """Set `host`'s password in the netrc file, creating it if needed; the file ends up
    mode 0600 whatever it was, since it now holds a key."""
    path = path or netrc_path()
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise NetrcError(f"{path}: cannot read: {exc}") from None
    write_private(path, update_text(old, host, password))
    return path


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, readable by the owner only. A link (a
    dotfiles-managed ~/.netrc) stays a link: the file it names is replaced (`replace_file`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = replace_file.begin(path, mode=0o600)
    try:
        out.file.write(text.encode("utf-8"))
        replace_file.publish(out)
    except BaseException:
        replace_file.abandon(out)
        raise
