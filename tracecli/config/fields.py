"""The catalogue of settings: one entry per key, shared by flags, environment and config files.

One table means a key is spelt, parsed and checked the same way wherever it comes from, so a
bad value gets the same message from `--chunk-size 0`, `TRACECLI_CHUNK_SIZE=0` and
`chunk_size: 0` in a file (only the place named in front of it differs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from tracecli.config.secret import SecretStr

TARGETS = ("weave", "freeplay", "local")
MODES = ("auto", "complete", "batch", "single", "otel")
# Defaults and limits of the upload settings: the one place they are written. The settings,
# the library (tracecli.upload.api.UploadOptions, tracecli.wire.chunking.Chunker), the help
# text of the flags and docs/configuration.md all read them from here.
CHUNK_SIZE = 500  # records per request
MAX_CHUNK_SIZE = 100_000
CHUNK_BYTES = 10 * 1024 * 1024  # bytes per request
MIN_CHUNK_BYTES = 1024
MAX_CHUNK_BYTES = 32 * 1024 * 1024  # the Weave server refuses larger bodies (413)
CONCURRENCY = 4  # requests in flight
MAX_CONCURRENCY = 64
MAX_RETRY_TIME = 300.0  # seconds to keep retrying one request, from its first attempt
MAX_OUTAGE = 60.0  # no answer to any request for this long: the server is down, stop
FLUSH_INTERVAL = 1.0  # upload --follow: the longest time between two looks at the inputs
PAIR_WAIT = 30.0  # upload --follow, auto mode: how long a start waits for its end
FOLLOW_STATUS_EVERY = 30.0  # upload --follow without a terminal: seconds between status lines
# upload --follow: a YAML file unchanged this long has its last document taken as whole
# (inputs.settle.QUIET_SECONDS, the default of the readers outside a follow)
YAML_QUIET = 2.0
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2}
_SIZE_UNITS |= {"mb": 1000**2, "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3}
_SIZE_UNITS |= {"gib": 1024**3, "gi": 1024**3}
_DURATION_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}


class BadValue(ValueError):
    """A value that does not fit its key; the message completes "<place>: <key> ..."."""


# how a value that is neither text nor a number is named in a message (a YAML file can hold any)
_KINDS: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (list, "a list"),
    (dict, "a mapping"),
)


def _describe(value: Any) -> str:
    return next((words for kind, words in _KINDS if isinstance(value, kind)), repr(value))


def parse_choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise BadValue(f"must be one of {', '.join(choices)}; got {_describe(value)}")

    return parse


def parse_url(value: Any) -> str:
    """A server URL (http or https, a host, a port in range), or BadValue naming it without
    its userinfo, which may hold the API key (`https://api:KEY@host`)."""
    if not isinstance(value, str) or not value.strip():
        raise BadValue(f"must be a URL like https://host[:port]; got {_describe(value)}")
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is no number, or beyond 65535, is said here
    except ValueError:  # that, or a bracketed host that is no address (`https://[zz`)
        ok = False
    if ok and any(c.isspace() or c in "@/\\" for c in parts.hostname or ""):
        ok = False  # `https://api:KEY@ho st`: urlsplit keeps the space in the host
    if not ok:
        raise BadValue(f"must be a URL like https://host[:port]; got {shown_url(url)!r}")
    return url


def url_key(url: str) -> SecretStr | None:
    """The key a server URL carries (`https://api:KEY@host`, W&B's convention): requests
    send it when no other key is given (targets/endpoint.py)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return SecretStr(unquote(password)) if password else None


class UserinfoSplit(NamedTuple):
    """A URL cut around its userinfo: `head` is the scheme and `//`, `userinfo` what stands
    before the host's `@` (None when there is none), `tail` the host and all after it."""

    head: str
    userinfo: str | None
    tail: str


def split_userinfo(url: str) -> UserinfoSplit:
    """The one reading of a URL's userinfo that showing and stripping share: by its text,
    never failing, so a URL that does not parse (a bad port, a broken bracket) still loses
    its key; the rest is kept exactly as given."""
    scheme, sep, rest = url.partition("//")
    if not sep:
        return UserinfoSplit("", None, url)
    end = min(
        (i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest)
    )
    userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return UserinfoSplit(scheme + sep, None, rest)
    return UserinfoSplit(scheme + sep, userinfo, host + rest[end:])


def shown_url(url: str) -> str:
    """`url` as tracecli prints it: the password of its userinfo (a key) masked, or the
    whole userinfo when it has no user name; the rest as given, even when it does not
    parse (a message about a bad URL must not show the key in it either)."""
    head, userinfo, tail = split_userinfo(url)
    if userinfo is None:
        return url
    user, colon, _password = userinfo.partition(":")
    masked = f"{user}:**********" if colon else "**********"
    return f"{head}{masked}@{tail}"


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@` (what we log, hash, show)."""
    head, userinfo, tail = split_userinfo(url)
    return url if userinfo is None else head + tail


def parse_text(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise BadValue(f"must be a non-empty string; got {_describe(value)}")


def parse_secret(value: Any) -> SecretStr:
    # Never echo the value back: it may be a real key typed into the wrong place.
    if not isinstance(value, str) or not value.strip():
        raise BadValue("must be a non-empty string")
    if any(c.isspace() for c in value.strip()):
        raise BadValue("must not contain spaces (is it a key?)")
    return SecretStr(value.strip())


def parse_env_name(value: Any) -> str:
    if isinstance(value, str) and ENV_NAME_RE.match(value.strip()):
        return value.strip()
    raise BadValue(f"must be an environment variable name; got {_describe(value)}")


def parse_path(value: Any) -> Path:
    if isinstance(value, str | Path) and str(value).strip():
        return Path(str(value).strip()).expanduser()
    raise BadValue(f"must be a file path; got {_describe(value)}")


def parse_int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("+").isdigit():
            number = int(value.strip())
        if number is None or number < low or (high is not None and number > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise BadValue(f"must be a whole number {bound}; got {_describe(value)}")
        return number

    return parse


def _with_unit(value: Any, pattern: re.Pattern[str], units: Mapping[str, float]) -> float | None:
    """A number, or a number with one of `units` (as `pattern` reads it); None otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := pattern.match(value)):
        return float(m.group(1)) * units[(m.group(2) or "").lower()]
    return None


def parse_size(value: Any) -> int:
    """Bytes: a number, or a number with a unit (`512KiB`, `10MiB`, `1.5MB`)."""
    number = _with_unit(value, _SIZE_RE, _SIZE_UNITS)
    if number is None or number != int(number):
        raise BadValue(f"must be a size in bytes such as 10485760 or 10MiB; got {_describe(value)}")
    size = int(number)
    if not MIN_CHUNK_BYTES <= size <= MAX_CHUNK_BYTES:
        raise BadValue(f"must be between 1KiB and 32MiB (the server's limit); got {size} bytes")
    return size


def parse_duration(value: Any) -> float:
    """Seconds: a number, or a number with a unit (`500ms`, `90s`, `5m`, `1h`)."""
    seconds = _with_unit(value, _DURATION_RE, _DURATION_UNITS)
    if seconds is None or seconds <= 0:
        raise BadValue(f"must be a positive duration (300, 90s, 5m); got {_describe(value)}")
    return seconds


def parse_wait(value: Any) -> float:
    """Seconds, as `parse_duration`, where 0 is allowed (no waiting at all)."""
    if (isinstance(value, int | float) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, str) and (m := _DURATION_RE.match(value)) and float(m.group(1)) == 0
    ):
        return 0.0
    try:
        return parse_duration(value)
    except BadValue:
        raise BadValue(
            f"must be a duration of 0 or more (0, 30, 1m); got {_describe(value)}"
        ) from None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise BadValue(f"must be true or false; got {_describe(value)}")


class Field(NamedTuple):
    """One setting. `env` are the target-independent variables; `secret` values are masked;
    `project_ok` False keeps a key out of the project's (usually committed) tracecli.yaml."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    env: tuple[str, ...] = ()
    default: Any = None
    secret: bool = False
    project_ok: bool = True
    is_path: bool = False
    flag_of: str | None = None  # the setting whose flag sets this one too (no flag of its own)

    @property
    def flag(self) -> str:
        return "--" + (self.flag_of or self.name).replace("_", "-")


def _count(name: str, env: str, default: int, high: int, help: str) -> Field:
    """A whole number from 1 to `high`."""
    return Field(name, parse_int(1, high), help, env=(env,), default=default)


def _size(name: str, env: str, default: int, help: str) -> Field:
    """Bytes, from 1KiB to 32MiB (`512KiB`, `10MiB`)."""
    return Field(name, parse_size, help, env=(env,), default=default)


def _seconds(
    name: str,
    env: str,
    default: float | None,
    help: str,
    parse: Callable[[Any], float] = parse_duration,
    flag_of: str | None = None,
) -> Field:
    """A duration (`300`, `90s`, `5m`); `parse_wait` where 0 (no wait) is allowed."""
    return Field(name, parse, help, env=(env,), default=default, flag_of=flag_of)


def _switch(name: str, env: str, help: str) -> Field:
    """true or false; false unless set."""
    return Field(name, parse_bool, help, env=(env,), default=False)


def _file(name: str, env: str, help: str, default: Path | None = None) -> Field:
    return Field(name, parse_path, help, env=(env,), default=default, is_path=True)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(
            "target",
            parse_choice(TARGETS),
            "where calls go: weave, freeplay or local (the embedded store); "
            "default: weave when a server is set, else local",
            env=("TRACECLI_TARGET",),
        ),
        Field(
            "server",
            parse_url,
            "server base URL (Weave: WF_TRACE_SERVER_URL; Freeplay: FREEPLAY_API_BASE)",
        ),
        Field(
            "project",
            parse_text,
            "project: entity/project for Weave, the project id for Freeplay",
            env=("TRACECLI_PROJECT",),
        ),
        Field(
            "api_key",
            parse_secret,
            "API key (user config only; better: tracecli login or the environment)",
            secret=True,
            project_ok=False,
        ),
        Field(
            "api_key_env",
            parse_env_name,
            "name of an environment variable that holds the API key (e.g. for CI)",
        ),
        _file("db", "TRACECLI_DB", "embedded store file"),
        Field("mode", parse_choice(MODES), "upload mode", env=("TRACECLI_MODE",), default="auto"),
        _count(
            "chunk_size", "TRACECLI_CHUNK_SIZE", CHUNK_SIZE, MAX_CHUNK_SIZE, "records per request"
        ),
        _size("chunk_bytes", "TRACECLI_CHUNK_BYTES", CHUNK_BYTES, "bytes per request (e.g. 10MiB)"),
        _count(
            "concurrency",
            "TRACECLI_CONCURRENCY",
            CONCURRENCY,
            MAX_CONCURRENCY,
            "requests in flight",
        ),
        _seconds(
            "max_retry_time",
            "TRACECLI_MAX_RETRY_TIME",
            MAX_RETRY_TIME,
            "seconds to keep retrying one request (e.g. 300, 5m)",
        ),
        _seconds(
            "max_outage",
            "TRACECLI_MAX_OUTAGE",
            MAX_OUTAGE,
            "stop when the server has answered no request for this long (e.g. 60, 2m); "
            "a rerun resumes",
        ),
        _seconds(
            "flush_interval",
            "TRACECLI_FLUSH_INTERVAL",
            FLUSH_INTERVAL,
            "upload --follow: the longest time between two looks at the inputs (file events "
            "wake it sooner)",
        ),
        _seconds(
            "pair_wait",
            "TRACECLI_PAIR_WAIT",
            PAIR_WAIT,
            "upload --follow: how long a start waits for its end before it goes as a running "
            "call (auto mode) or is reported as having no end (complete mode, Freeplay)",
            parse=parse_wait,
        ),
        _seconds(
            "follow_status_every",
            "TRACECLI_FOLLOW_STATUS_EVERY",
            FOLLOW_STATUS_EVERY,
            "upload --follow without a terminal: seconds between status lines",
        ),
        _seconds(
            "follow_max_outage",
            "TRACECLI_FOLLOW_MAX_OUTAGE",
            None,
            "upload --follow: give up (exit 1) when no pass got through for this long; "
            "default: never (--max-outage on the command line sets it too)",
            flag_of="max_outage",  # one flag, both stops: a pass's and the follow's
        ),
        _seconds(
            "yaml_quiet",
            "TRACECLI_YAML_QUIET",
            YAML_QUIET,
            "upload --follow: how long a YAML file must stay unchanged before its last "
            "document, not followed by --- or ..., is taken as whole (the writer stopped)",
            parse=parse_wait,
        ),
        _switch(
            "poll",
            "TRACECLI_POLL",
            "upload --follow: look every flush interval only, without file events (network "
            "filesystems)",
        ),
        _file(
            "rejected",
            "TRACECLI_REJECTED",
            "rejected-records file",
            Path("tracecli-rejected.jsonl"),
        ),
        _file(
            "ca_bundle", "TRACECLI_CA_BUNDLE", "CA bundle for a private TLS certificate authority"
        ),
        _switch(
            "allow_insecure",
            "TRACECLI_ALLOW_INSECURE",
            "allow sending the key over plain http to a host that is not loopback",
        ),
    )
}


def shown_default(name: str) -> str:
    """A setting's default as its flag's help shows it: `500`, `10MiB`, `300`."""
    value = FIELDS[name].default
    if name == "chunk_bytes":
        return f"{value // (1024 * 1024)}MiB"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# Keys of a config file besides the settings themselves.
FILE_ONLY_KEYS = ("default_profile", "profiles", "credentials")
