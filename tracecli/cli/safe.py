"""The one seam where text from a file or a server becomes safe to show.

Trace text is written by LLMs and by whoever controls their inputs: an exception message, a
display_name, a file name or a server's error reason may carry terminal control sequences
(`ESC [31m`, an OSC 52 clipboard write, a set-title), C1 controls that some terminals treat as
CSI, bidi overrides that reorder what is read (Trojan Source), line breaks that split a table
row, or lone surrogates that make the write itself fail. Every renderer of the CLI passes such
text through `safe_text` (people) or `safe_json` (JSON for tools) before it reaches stdout or
stderr, on a terminal and in a pipe alike: the same bytes in a CI log as on a screen.

Rich markup is the other half: the CLI never hands trace text to Rich as markup (`say` prints
a `Text`, tables get `Text` cells), so `[/div]` cannot crash a render, `[error]` cannot
vanish and `[link=...]` cannot make a link.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: one value, one line, one cell), DEL, C1 controls,
# the bidi marks, embeddings, overrides and isolates, the Unicode line and paragraph
# separators, lone surrogates (undecodable bytes of a file name: they cannot be encoded),
# and the invisible characters no text needs to show: the zero-width space, word joiner and
# invisible operators, the BOM, the Mongolian vowel separator, interlinear annotations and
# the tag characters (hidden ASCII: "ASCII smuggling"). They hide text or make two names
# look alike, and terminals disagree on their width. The zero-width joiner and non-joiner
# stay: emoji sequences and Persian and Indic scripts need them.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
# Inside JSON text C0 controls are escaped already by every encoder; the rest may be raw.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escape_but_line_breaks(match: re.Match[str]) -> str:
    ch = match.group()
    return ch if ch in "\r\n" else _escape(match)


def safe_text(value: object, *, keep_line_breaks: bool = False) -> str:
    """`value` as text a terminal shows literally: every control or reordering character
    becomes a visible escape (`\\x1b`, `\\n`, `\\u202e`); everything else is unchanged.

    `keep_line_breaks`: CR and LF stay, for a format that escapes them its own way (GitHub
    workflow commands write them as %0D and %0A)."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_but_line_breaks if keep_line_breaks else _escape, text)


def _escape_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_json(text: str) -> str:
    """JSON text with the characters a terminal could act on written as `\\uXXXX` escapes:
    the same JSON value for a parser, inert on a screen. Only string contents can hold them
    (JSON's own syntax is ASCII), so the replacement never changes the document's shape."""
    if _UNSAFE_IN_JSON.search(text) is None:
        return text
    return _UNSAFE_IN_JSON.sub(_escape_json, text)


# The same characters, UTF-8 encoded (DEL, C1 as C2 80-9F, U+061C, U+200E/F, U+2028-202E,
# U+2066-2069), for JSON bytes written straight to stdout.
_UNSAFE_IN_JSON_BYTES = re.compile(
    rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]"
)


def _escape_json_bytes(match: re.Match[bytes]) -> bytes:
    return f"\\u{ord(match.group().decode()):04x}".encode()


def safe_json_bytes(data: bytes) -> bytes:
    """`safe_json` for UTF-8 JSON bytes."""
    if _UNSAFE_IN_JSON_BYTES.search(data) is None:
        return data
    return _UNSAFE_IN_JSON_BYTES.sub(_escape_json_bytes, data)
