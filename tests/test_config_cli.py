"""`tracecli config show`: exact text and JSON, secrets masked, file errors as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracecli.cli import app
from tracecli.config.settings import user_config_path

KEY = "f" * 40


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tracecli.yaml").write_text(
        "server: http://127.0.0.1:6345\n"
        "project: team/app\n"
        "profiles:\n"
        "  ci:\n"
        "    chunk_size: 100\n"
        "    api_key_env: CI_KEY\n"
    )
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_show_text(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACECLI_CONCURRENCY", "2")
    monkeypatch.setenv("CI_KEY", KEY)
    code, out, err = invoke("config", "show", "--profile", "ci")
    assert (code, err) == (0, "")
    db = Path.home() / ".local/share/tracecli/traces.db"
    w = len(str(db))
    rows = [
        ("profile", "ci", "--profile"),
        ("target", "weave", "default (a server is set)"),
        ("server", "http://127.0.0.1:6345", "tracecli.yaml:1"),
        ("project", "team/app", "tracecli.yaml:2"),
        ("api_key", "**********", "env CI_KEY (api_key_env at tracecli.yaml:6)"),
        ("db", str(db), "default"),
        ("mode", "auto", "default"),
        ("chunk_size", "100", "tracecli.yaml:5"),
        ("chunk_bytes", "10485760", "default"),
        ("concurrency", "2", "env TRACECLI_CONCURRENCY"),
        ("max_retry_time", "300", "default"),
        ("max_outage", "60", "default"),
        ("flush_interval", "1", "default"),
        ("pair_wait", "30", "default"),
        ("follow_status_every", "30", "default"),
        ("follow_max_outage", "-", "default"),
        ("yaml_quiet", "2", "default"),
        ("poll", "false", "default"),
        ("rejected", "tracecli-rejected.jsonl", "default"),
        ("ca_bundle", "-", "default"),
        ("allow_insecure", "false", "default"),
    ]
    expected = [f"{n:<19}  {v:<{w}}  {s}" for n, v, s in rows]
    expected += ["", f"files: {project / 'tracecli.yaml'}"]
    assert out.splitlines() == expected
    assert KEY not in out


def test_show_json(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    code, out, _ = invoke("config", "show", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["settings"]["api_key"] == {"value": "**********", "source": "env WANDB_API_KEY"}
    assert data["settings"]["server"] == {
        "value": "http://127.0.0.1:6345",
        "source": "tracecli.yaml:1",
    }
    assert data["settings"]["profile"] == {
        "value": None,
        "source": "default (none: top-level settings only)",
    }
    assert data["files"] == [str(project / "tracecli.yaml")]
    assert KEY not in out


def test_show_for_another_target(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREEPLAY_API_KEY", KEY)
    (project / "tracecli.yaml").write_text("")
    code, out, _ = invoke("config", "show", "--target", "freeplay", "--format", "json")
    assert code == 0
    settings = json.loads(out)["settings"]
    assert settings["target"] == {"value": "freeplay", "source": "--target"}
    assert settings["server"] == {"value": "https://app.freeplay.ai/api", "source": "default"}
    assert settings["api_key"]["source"] == "env FREEPLAY_API_KEY"


def test_a_bad_file_is_one_line_and_exit_2(project: Path) -> None:
    (project / "tracecli.yaml").write_text("server: http://127.0.0.1:6345\nchunk_sise: 5\n")
    code, out, err = invoke("config", "show")
    assert (code, out) == (2, "")
    assert err == (
        "tracecli: error: tracecli.yaml:2: unknown key 'chunk_sise' (did you mean 'chunk_size'?)\n"
    )


def test_a_key_in_the_project_file_is_refused_without_echoing_it(project: Path) -> None:
    (project / "tracecli.yaml").write_text(f"api_key: {KEY}\n")
    code, _, err = invoke("config", "show")
    assert code == 2
    assert err.startswith("tracecli: error: tracecli.yaml:1: api_key: API keys do not belong")
    assert KEY not in err


def test_warnings_go_to_stderr(project: Path) -> None:
    path = user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text(f"api_key: {KEY}\n")
    path.chmod(0o644)
    code, out, err = invoke("config", "show")
    assert code == 0
    assert err.startswith("tracecli: warning: ~/.config/tracecli/config.yaml holds API keys")
    assert KEY not in out + err


def test_unknown_profile_is_exit_2(project: Path) -> None:
    code, _, err = invoke("config", "show", "--profile", "nope")
    assert code == 2
    expected = "profile 'nope' (from --profile) is not defined in tracecli.yaml; known profiles: ci"
    assert expected in err


def test_config_without_subcommand_shows_help() -> None:
    result = CliRunner().invoke(app, ["config"])
    assert "show" in result.stdout + result.stderr


def test_upload_and_tail_take_their_settings_from_a_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One profile in tracecli.yaml carries the store and the project to both commands."""
    from tests.conftest import SAMPLES

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tracecli.yaml").write_text(
        "profiles:\n"
        "  laptop:\n"
        "    target: local\n"
        "    db: store/traces.db\n"
        "    project: team/profiled\n"
        "    chunk_size: 7\n"
    )
    sample = str(SAMPLES / "weave" / "agent_flat.jsonl")
    up = CliRunner().invoke(app, ["upload", sample, "--profile", "laptop", "--format", "json"])
    assert up.exit_code == 0, up.stderr
    assert json.loads(up.stdout)["uploaded"] > 0
    assert (tmp_path / "store" / "traces.db").is_file()
    tail = CliRunner().invoke(app, ["tail", "--profile", "laptop", "--format", "json", "-n", "3"])
    assert tail.exit_code == 0, tail.stderr
    calls = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(calls) == 3
    assert {c["project_id"] for c in calls} == {"team/profiled"}
    # Without the profile: neither the store nor the project are found.
    plain = CliRunner().invoke(app, ["tail", "--project", "team/profiled"])
    assert plain.exit_code == 2


def test_a_bad_profile_stops_upload_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tracecli.yaml").write_text("profiles:\n  p:\n    chunk_size: 0\n")
    result = CliRunner().invoke(app, ["upload", "missing.jsonl", "--profile", "p"])
    assert result.exit_code == 2
    assert result.stderr.startswith("tracecli: error: tracecli.yaml:3: chunk_size: must be")


def test_show_takes_the_flags_commands_take(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`config show --server URL` says what `upload --server URL` would use: the W&B cloud
    key from the `api.wandb.ai` entry that `wandb login` writes, the flag as the source."""
    netrc = Path.home() / ".netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("TRACECLI_PROJECT", "env/project")
    code, out, err = invoke(
        "config", "show", "--server", "https://trace.wandb.ai", "--db", "x.db", "-f", "json"
    )
    assert (code, err) == (0, "")
    got = {k: (v["value"], v["source"]) for k, v in json.loads(out)["settings"].items()}
    assert got["server"] == ("https://trace.wandb.ai", "--server")
    assert got["project"] == ("env/project", "env TRACECLI_PROJECT")
    assert got["api_key"] == ("**********", "~/.netrc (machine api.wandb.ai)")
    assert got["db"][1] == "--db"
    assert KEY not in out
    code, out, _ = invoke("config", "show", "-p", "flag/project")
    assert code == 0 and "flag/project" in out and "--project" in out


def test_paths_below_home_read_as_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracecli.config.files import display_path

    home = Path.home()
    monkeypatch.chdir(home)
    assert display_path(home / ".netrc") == "~/.netrc"
    (home / "app").mkdir(exist_ok=True)
    monkeypatch.chdir(home / "app")
    assert display_path(home / "app" / "tracecli.yaml") == "tracecli.yaml"
    assert display_path(home / ".netrc") == "~/.netrc"
