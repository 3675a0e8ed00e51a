"""`upload --follow` of a YAML file whose writer pauses in the middle of a document for
longer than the default 2 s: the setting `yaml_quiet` (a config key, TRACECLI_YAML_QUIET)
makes the follow wait that long before taking the last document as whole. Against
`tracecli serve` behind the fault proxy, which counts sends per call id."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.faultproxy import FaultProxy
from tests.support.follow_kit import received, start_follower, stop, wait_for
from tests.support.uploadkit import diff_calls, gen_calls, read_back, tracecli_serve


def doc(body: dict[str, Any]) -> bytes:
    """The keys as YAML lines (block style, in their order): a document, or the rest of one."""
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True).encode()


def test_a_writer_pausing_mid_document_under_yaml_quiet_has_it_sent_whole(
    tmp_path: Path,
) -> None:
    calls = gen_calls(1, seed=86)
    start, end = calls[0]
    whole = {"type": "call", **start, **end}
    app = tmp_path / "app.yaml"
    app.write_bytes(b"")
    (tmp_path / "tracecli.yaml").write_text("yaml_quiet: 8s\n")  # the follower's folder
    with tracecli_serve(tmp_path / "serve") as serve, FaultProxy(serve.url) as proxy:
        proc = start_follower(tmp_path, proxy.url, app)
        try:
            time.sleep(0.5)
            with app.open("ab") as f:  # all but its output; then a pause of 3.5 s
                f.write(doc({k: v for k, v in whole.items() if k != "output"}))
            time.sleep(3.5)
            assert len(received(proxy)) == 0  # the pause is under yaml_quiet: it waits
            with app.open("ab") as f:
                f.write(doc({"output": whole["output"]}) + b"...\n")
            wait_for(lambda: len(received(proxy)) == 1, 30, proc)
        finally:
            assert stop(proc) == 0, (tmp_path / "follow0.err").read_text()
        assert proxy.duplicates() == 0
        assert diff_calls(calls, read_back(serve.url)) == []
