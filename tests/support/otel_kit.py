"""What the OpenTelemetry tests share: an OTLP file's lines, the projects its resources
name, two weave-ref servers (weave's own SqliteTraceServer, in UTC as weave's span times
need), posting lines to weave's `/otel/v1/traces`, and the field-by-field comparison of
what two servers store (the one difference allowed: weave's naive span times against
tracecli's `Z`, the same instant; docs/opentelemetry.md says why)."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.servers import ServerHandle, start_weave_ref
from tests.support.uploadkit import read_back


def read_lines(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return [line for line in raw.splitlines() if line.strip()]


def resource_projects(lines: list[bytes]) -> set[str]:
    """entity/project named by wandb.* resource attributes in the lines."""
    out = set()
    for line in lines:
        for rs in orjson.loads(line)["resourceSpans"]:
            attrs = {a["key"]: a["value"].get("stringValue") for a in rs["resource"]["attributes"]}
            if attrs.get("wandb.entity") and attrs.get("wandb.project"):
                out.add(f"{attrs['wandb.entity']}/{attrs['wandb.project']}")
    return out


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    directory = tmp_path_factory.mktemp("weave-refs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "UTC")  # weave converts span times with datetime.fromtimestamp
        a = start_weave_ref(directory / "a")
        try:
            b = start_weave_ref(directory / "b")
        except BaseException:
            a.stop()
            raise
    yield a, b
    a.stop()
    b.stop()


def post_otel(server: ServerHandle, lines: list[bytes], project: str) -> int:
    """Each line to weave's OTel route; the number of spans weave rejected."""
    rejected = 0
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as c:
        for line in lines:
            headers = {"content-type": "application/json", "project_id": project}
            r = c.post("/otel/v1/traces", content=line, headers=headers)
            assert r.status_code == 200, r.text
            rejected += int(r.json().get("partialSuccess", {}).get("rejectedSpans", 0))
    return rejected


def instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def same_calls_stored(a_url: str, b_url: str, projects: set[str]) -> int:
    """Assert that two servers store the same calls, field by field (see `differences`), in
    each project; how many calls were compared."""
    compared = 0
    for proj in projects:
        weave = {c["id"]: c for c in read_back(a_url, proj)}
        ours = {c["id"]: c for c in read_back(b_url, proj)}
        assert weave.keys() == ours.keys(), (proj, weave.keys() ^ ours.keys())
        problems = {i: d for i in weave if (d := differences(weave[i], ours[i]))}
        assert not problems, problems
        compared += len(weave)
    return compared


def differences(weave: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(weave.keys() | ours.keys()):
        a, b = weave.get(key), ours.get(key)
        if key in ("started_at", "ended_at"):
            if instant(a) != instant(b) or (a is not None and b != a + "Z"):
                out.append(f"{key}: weave {a!r}, tracecli {b!r}")
        elif a != b:
            out.append(f"{key}: weave {str(a)[:200]!r}, tracecli {str(b)[:200]!r}")
    return out
