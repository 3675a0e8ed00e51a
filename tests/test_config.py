"""Settings resolution: precedence, profiles, origins, and file errors that name the line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tracecli.config.fields import parse_duration, parse_size
from tracecli.config.files import ConfigError
from tracecli.config.per_target import (
    DEFAULT_FREEPLAY_BASE,
    DEFAULT_WEAVE_SERVER,
    WeaveTarget,
    is_loopback,
    netrc_password,
    resolve_weave,
    weave_api_key,
    weave_server,
)
from tracecli.config.secret import SecretStr
from tracecli.config.settings import load_settings, user_config_path
from tracecli.diagnostics import UsageError

KEY = "k" * 40


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (with a sub-folder as the working directory)."""
    root = tmp_path / "proj"
    (root / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(root / "sub" / "deeper")
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_cfg(text: str) -> Path:
    path = write(user_config_path(), text)
    path.chmod(0o600)
    return path


# -- precedence -----------------------------------------------------------------------


def test_defaults_with_no_files_mean_the_embedded_store(project: Path) -> None:
    s = load_settings({})
    assert (s.target, s.server, s.api_key, s.profile) == ("local", None, None, None)
    assert s.chunk_size == 500 and s.chunk_bytes == 10 * 1024 * 1024 and s.concurrency == 4
    assert s.max_retry_time == 300.0 and s.mode == "auto" and s.allow_insecure is False
    assert s.db.name == "traces.db"
    assert str(s.origin("chunk_size")) == "default"
    assert str(s.origin("target")) == "default (no server set: the embedded store)"
    assert s.weave_target() == WeaveTarget(None, None, s.db)


def test_flag_beats_env_beats_project_file_beats_user_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "tracecli.yaml", "chunk_size: 300\nconcurrency: 3\nmode: batch\n")
    user_cfg("chunk_size: 400\nconcurrency: 6\nmode: single\nmax_retry_time: 5m\n")
    monkeypatch.setenv("TRACECLI_CONCURRENCY", "5")
    monkeypatch.setenv("TRACECLI_CHUNK_SIZE", "200")
    s = load_settings({"chunk_size": 100, "concurrency": None})
    assert (s.chunk_size, str(s.origin("chunk_size"))) == (100, "--chunk-size")
    assert (s.concurrency, str(s.origin("concurrency"))) == (5, "env TRACECLI_CONCURRENCY")
    assert (s.mode, str(s.origin("mode"))) == ("batch", f"{project / 'tracecli.yaml'}:3")
    assert s.max_retry_time == 300.0
    assert str(s.origin("max_retry_time")) == "~/.config/tracecli/config.yaml:4"


def test_project_file_is_found_in_the_nearest_parent(project: Path) -> None:
    write(project / "tracecli.yaml", "chunk_size: 1\n")
    write(project / "sub" / "tracecli.yaml", "chunk_size: 2\n")
    s = load_settings({})
    assert s.chunk_size == 2
    assert str(s.origin("chunk_size")) == f"{project / 'sub' / 'tracecli.yaml'}:1"
    assert s.files[0] == project / "sub" / "tracecli.yaml"


def test_cwd_argument_overrides_the_working_directory(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write(other / "tracecli.yaml", "concurrency: 9\n")
    assert load_settings({}, cwd=other).concurrency == 9
    assert load_settings({}).concurrency == 4


def test_unknown_cli_value_is_a_programming_error(project: Path) -> None:
    with pytest.raises(ValueError, match="not settings: chunksize"):
        load_settings({"chunksize": 3})


# -- target, server, project --------------------------------------------------------------


def test_a_server_means_weave_and_the_env_names_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WF_TRACE_SERVER_URL", "http://127.0.0.1:6345/")
    s = load_settings({})
    assert (s.target, s.server) == ("weave", "http://127.0.0.1:6345")
    assert str(s.origin("server")) == "env WF_TRACE_SERVER_URL"
    assert str(s.origin("target")) == "default (a server is set)"


def test_target_weave_without_a_server_is_wandb_cloud(project: Path) -> None:
    s = load_settings({"target": "weave"})
    assert s.server == DEFAULT_WEAVE_SERVER
    with pytest.raises(UsageError, match=re.escape("no API key for https://trace.wandb.ai")):
        s.weave_target()


def test_local_target_refuses_a_server_flag(project: Path) -> None:
    with pytest.raises(UsageError, match="--server does not apply to the local target"):
        load_settings({"target": "local", "server": "http://127.0.0.1:1"})


def test_freeplay_server_from_its_variables(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TRACE_SERVER_URL", "http://127.0.0.1:6345")  # not Freeplay's
    s = load_settings({"target": "freeplay"})
    assert (s.server, str(s.origin("server"))) == (DEFAULT_FREEPLAY_BASE, "default")
    monkeypatch.setenv("FREEPLAY_API_URL", "http://127.0.0.1:8787")
    s = load_settings({"target": "freeplay"})
    assert (s.server, str(s.origin("server"))) == (
        "http://127.0.0.1:8787/api",
        "env FREEPLAY_API_URL",
    )
    monkeypatch.setenv("FREEPLAY_API_BASE", "http://127.0.0.1:9/api")
    assert load_settings({"target": "freeplay"}).server == "http://127.0.0.1:9/api"


def test_project_is_checked_for_the_target(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "tracecli.yaml", "project: just-a-name\n")
    with pytest.raises(UsageError, match=r"tracecli.yaml:1: project must be entity/project"):
        load_settings({})
    pid = "4a6c1f1e-8f0b-4a7e-9a51-3b1d2c9e7f10"
    monkeypatch.setenv("FREEPLAY_PROJECT_ID", pid)
    s = load_settings({"target": "freeplay"})
    assert (s.project, str(s.origin("project"))) == (pid, "env FREEPLAY_PROJECT_ID")
    with pytest.raises(UsageError, match="--project: project must be a Freeplay project id"):
        load_settings({"target": "freeplay", "project": "team/app"})


def test_bad_flag_and_env_values_name_their_source(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match=r"^--chunk-size: must be a whole number between 1"):
        load_settings({"chunk_size": 0})
    monkeypatch.setenv("TRACECLI_CHUNK_BYTES", "64MiB")
    with pytest.raises(UsageError, match=r"^TRACECLI_CHUNK_BYTES: must be between 1KiB and 32MiB"):
        load_settings({})
    monkeypatch.setenv("TRACECLI_CHUNK_BYTES", "1MiB")
    monkeypatch.setenv("TRACECLI_TARGET", "wevae")
    with pytest.raises(UsageError, match="TRACECLI_TARGET: must be one of weave, freeplay, local"):
        load_settings({})


def test_sizes_and_durations() -> None:
    assert parse_size("10MiB") == 10 * 1024 * 1024
    assert parse_size("512 KiB") == 512 * 1024
    assert parse_size("1.5MB") == 1_500_000
    assert parse_size(2048) == 2048
    assert parse_duration("90s") == 90.0
    assert parse_duration("5m") == 300.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration(12) == 12.0
    for bad in ("-1", "soon", True, 0):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_paths_in_a_file_are_relative_to_the_file(project: Path) -> None:
    write(project / "tracecli.yaml", "db: data/traces.db\nrejected: out/rej.jsonl\n")
    s = load_settings({})
    assert s.db == project / "data" / "traces.db"
    assert s.rejected == project / "out" / "rej.jsonl"


# -- profiles -------------------------------------------------------------------------------


PROFILES = """\
server: http://127.0.0.1:6345
project: team/dev
default_profile: dev
profiles:
  dev:
    chunk_size: 10
  prod:
    server: https://weave.example.com
    project: team/prod
"""


def test_profile_from_flag_env_or_default(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "tracecli.yaml", PROFILES)
    s = load_settings({})
    assert (s.profile, str(s.origin("profile"))) == ("dev", f"{project / 'tracecli.yaml'}:3")
    assert (s.chunk_size, s.server) == (10, "http://127.0.0.1:6345")
    monkeypatch.setenv("TRACECLI_PROFILE", "prod")
    s = load_settings({})
    assert (s.profile, str(s.origin("profile"))) == ("prod", "env TRACECLI_PROFILE")
    assert (s.server, s.project, s.chunk_size) == ("https://weave.example.com", "team/prod", 500)
    s = load_settings({}, profile="dev")
    assert (s.profile, str(s.origin("profile"))) == ("dev", "--profile")


def test_a_profile_beats_the_top_level_of_either_file(project: Path) -> None:
    write(project / "tracecli.yaml", "server: http://127.0.0.1:6345\nconcurrency: 2\n")
    user_cfg("profiles:\n  prod:\n    server: https://weave.example.com\n    concurrency: 8\n")
    s = load_settings({}, profile="prod")
    assert s.server == "https://weave.example.com"
    assert str(s.origin("server")) == "~/.config/tracecli/config.yaml:3"
    assert s.concurrency == 8
    # ... and the project's profile section beats the user's.
    write(
        project / "tracecli.yaml",
        "profiles:\n  prod:\n    concurrency: 16\n",
    )
    assert load_settings({}, profile="prod").concurrency == 16


def test_unknown_profile_lists_the_known_ones(project: Path) -> None:
    write(project / "tracecli.yaml", PROFILES)
    with pytest.raises(UsageError, match=r"profile 'stage' \(from --profile\) is not defined in "):
        load_settings({}, profile="stage")
    with pytest.raises(UsageError, match="known profiles: dev, prod"):
        load_settings({}, profile="stage")


def test_a_profile_with_no_config_file_at_all_says_where_files_go(project: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_settings({}, profile="stage", env={"TRACECLI_PROFILE": "x"})
    assert str(err.value) == (
        "profile 'stage' (from --profile) is not defined: no config file found (tracecli.yaml "
        "here or in a parent folder, or ~/.config/tracecli/config.yaml)"
    )


def test_default_profile_must_exist(project: Path) -> None:
    write(project / "tracecli.yaml", "default_profile: gone\n")
    with pytest.raises(UsageError) as exc:
        load_settings({})
    assert f"'gone' (from {project / 'tracecli.yaml'}:1)" in str(exc.value)


# -- file errors: file and line -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunk_size: 10\nchunksize: 5\n", "tracecli.yaml:2: unknown key 'chunksize' (did you "),
        ("concurrency: many\n", "tracecli.yaml:1: concurrency: must be a whole number between"),
        ("concurrency: true\n", "tracecli.yaml:1: concurrency: must be a whole number"),
        ("target: wandb\n", "tracecli.yaml:1: target: must be one of weave, freeplay, local"),
        ("server: ftp://x\n", "tracecli.yaml:1: server: must be a URL like https://host"),
        ("mode: auto\nmode: batch\n", "tracecli.yaml:2: mode: given twice (first on line 1)"),
        ("a: [1,\n", "tracecli.yaml:2: YAML: "),
        ("- 1\n- 2\n", "tracecli.yaml:1: must be a mapping of settings"),
        ("profiles:\n  p:\n    chunk_bytes: 1TB\n", "tracecli.yaml:3: chunk_bytes: must be "),
        ("profiles:\n  p:\n    profiles: {}\n", "tracecli.yaml:3: profiles: belongs at the top"),
        ("profiles:\n  p:\n    bogus: 1\n", "tracecli.yaml:3: unknown key 'bogus'; known keys:"),
        ("profiles: [a]\n", "tracecli.yaml:1: profiles: must be a mapping"),
        ('server: !!python/object/apply:os.system ["echo hi"]\n', "tracecli.yaml:1: YAML: could"),
        ("api_key: " + KEY + "\n", "tracecli.yaml:1: api_key: API keys do not belong in the "),
        ("profiles:\n  p:\n    api_key: " + KEY + "\n", "tracecli.yaml:3: api_key: API keys"),
        ("credentials:\n  h: " + KEY + "\n", "tracecli.yaml:1: credentials: API keys do not"),
        ("api_key_env: MY KEY\n", "tracecli.yaml:1: api_key_env: must be an environment var"),
    ],
)
def test_a_bad_project_file_names_file_and_line(project: Path, text: str, message: str) -> None:
    write(project / "tracecli.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_settings({})
    assert message in str(exc.value)
    assert exc.value.exit_code == 2
    assert KEY not in str(exc.value)


def test_a_bad_user_file_names_it_too(project: Path) -> None:
    user_cfg("concurrency: 4\nprofiles:\n  p:\n    concurrency: 0\n")
    with pytest.raises(ConfigError, match=r"^~/\.config/tracecli/config\.yaml:4: concurrency:"):
        load_settings({})


def test_an_empty_or_comment_only_file_is_fine(project: Path) -> None:
    write(project / "tracecli.yaml", "# nothing yet\n")
    user_cfg("")
    assert load_settings({}).chunk_size == 500


def test_a_file_that_is_not_utf8_is_one_clear_error(project: Path) -> None:
    (project / "tracecli.yaml").write_bytes(b"server: \xff\xfe\n")
    with pytest.raises(ConfigError, match=re.escape("tracecli.yaml: not UTF-8 text")):
        load_settings({})


# -- keys -----------------------------------------------------------------------------------


def netrc(text: str) -> Path:
    path = Path.home() / ".netrc"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_key_flag_beats_env_beats_files_beats_netrc(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = "https://weave.example.com"
    netrc(f"machine weave.example.com login user password from-netrc{KEY}\n")
    s = load_settings({"server": server})
    assert s.api_key is not None and s.api_key.get_secret_value() == "from-netrc" + KEY
    assert str(s.origin("api_key")) == "~/.netrc (machine weave.example.com)"
    user_cfg(f"api_key: from-user{KEY}\n")
    s = load_settings({"server": server})
    assert s.api_key.get_secret_value() == "from-user" + KEY  # type: ignore[union-attr]
    assert str(s.origin("api_key")) == "~/.config/tracecli/config.yaml:1"
    monkeypatch.setenv("WANDB_API_KEY", "from-env" + KEY)
    s = load_settings({"server": server})
    assert (s.api_key.get_secret_value(), str(s.origin("api_key"))) == (  # type: ignore[union-attr]
        "from-env" + KEY,
        "env WANDB_API_KEY",
    )
    s = load_settings({"server": server, "api_key": "from-flag" + KEY})
    assert (s.api_key.get_secret_value(), str(s.origin("api_key"))) == (  # type: ignore[union-attr]
        "from-flag" + KEY,
        "--api-key",
    )


def test_wandb_cloud_key_is_found_under_api_wandb_ai(project: Path) -> None:
    netrc(f"machine api.wandb.ai\n  login user\n  password {KEY}\n")
    s = load_settings({"target": "weave"})
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY
    assert str(s.origin("api_key")) == "~/.netrc (machine api.wandb.ai)"
    assert s.weave_target().api_key == s.api_key
    assert s.warnings == ()


def test_a_netrc_others_can_read_is_used_with_a_warning(project: Path) -> None:
    path = netrc(f"machine api.wandb.ai\n  login user\n  password {KEY}\n")
    path.chmod(0o644)
    s = load_settings({"target": "weave"})
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY
    assert s.warnings == (
        f"~/.netrc holds an API key and others can read it (mode 644): chmod 600 {path}",
    )
    assert KEY not in s.warnings[0]


def test_netrc_env_variable_points_elsewhere(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = write(tmp_path / "n", f"machine 127.0.0.1 password {KEY}\n")
    monkeypatch.setenv("NETRC", str(other))
    s = load_settings({"server": "http://127.0.0.1:6345"})
    assert s.api_key is not None and str(s.origin("api_key")).endswith("n (machine 127.0.0.1)")


def test_unparsable_netrc_is_a_warning_not_a_silent_miss(project: Path) -> None:
    netrc("machine\n")
    s = load_settings({"server": "https://weave.example.com"})
    assert s.api_key is None
    assert any("cannot read the API key from" in w and ".netrc" in w for w in s.warnings)


def test_api_key_env_names_a_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        project / "tracecli.yaml",
        "server: https://weave.example.com\nprofiles:\n  ci:\n    api_key_env: CI_WEAVE_KEY\n",
    )
    s = load_settings({}, profile="ci")
    assert s.api_key is None
    assert any("api_key_env names CI_WEAVE_KEY, which is not set" in w for w in s.warnings)
    with pytest.raises(UsageError, match=re.escape("no API key for https://weave.example.com")):
        s.weave_target()
    monkeypatch.setenv("CI_WEAVE_KEY", KEY)
    s = load_settings({}, profile="ci")
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY
    assert (
        str(s.origin("api_key"))
        == f"env CI_WEAVE_KEY (api_key_env at {project / 'tracecli.yaml'}:4)"
    )


def test_api_key_and_api_key_env_together_is_an_error(project: Path) -> None:
    user_cfg(f"api_key: {KEY}\napi_key_env: X\n")
    with pytest.raises(
        ConfigError, match=re.escape("config.yaml:2: set api_key or api_key_env, not both")
    ):
        load_settings({})


def test_freeplay_key_from_env_or_stored_credentials(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_cfg(f"credentials:\n  app.freeplay.ai: {KEY}\n")
    monkeypatch.setenv("WANDB_API_KEY", "not-for-freeplay")
    s = load_settings({"target": "freeplay"})
    assert s.api_key is not None and s.api_key.get_secret_value() == KEY
    assert str(s.origin("api_key")) == "~/.config/tracecli/config.yaml:2 (credentials)"
    monkeypatch.setenv("FREEPLAY_API_KEY", "fp" + KEY)
    s = load_settings({"target": "freeplay"})
    assert str(s.origin("api_key")) == "env FREEPLAY_API_KEY"


def test_missing_freeplay_key_says_how_to_provide_one(project: Path) -> None:
    s = load_settings({"target": "freeplay"})
    with pytest.raises(UsageError, match="FREEPLAY_API_KEY, or run `tracecli login --target f"):
        s.require_api_key()


def test_local_target_needs_no_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    s = load_settings({})
    assert s.api_key is None and "not needed" in str(s.origin("api_key"))


def test_secrets_are_masked_everywhere(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    s = load_settings({"server": "https://weave.example.com"})
    assert KEY not in repr(s) and KEY not in str(s)
    assert KEY not in str(s.to_dict())
    assert s.to_dict()["settings"]["api_key"]["value"] == "**********"


def test_user_config_with_keys_readable_by_others_is_a_warning(project: Path) -> None:
    path = user_cfg(f"api_key: {KEY}\n")
    assert load_settings({}).warnings == ()
    if os.name == "posix":
        path.chmod(0o644)
        assert any("chmod 600" in w for w in load_settings({}).warnings)


# -- the first API, still used by commands ------------------------------------------------


def test_first_api_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("http://127.0.0.1:1") and is_loopback("http://localhost")
    assert not is_loopback("https://trace.wandb.ai")
    assert weave_server(None) is None
    assert weave_server("http://x:1/") == "http://x:1"
    with pytest.raises(UsageError):
        weave_server("nope")
    assert weave_api_key("a", "https://x").get_secret_value() == "a"  # type: ignore[union-attr]
    netrc(f"machine api.wandb.ai login user password {KEY}\n")
    assert netrc_password("api.wandb.ai") == KEY
    key = weave_api_key(None, "https://trace.wandb.ai")
    assert isinstance(key, SecretStr) and key.get_secret_value() == KEY
    assert resolve_weave("http://127.0.0.1:5", None) == WeaveTarget("http://127.0.0.1:5", None)
    with pytest.raises(UsageError, match=re.escape("no API key for https://example.com")):
        resolve_weave("https://example.com", None)
    assert resolve_weave(None, None, "x.db").db == Path("x.db")
