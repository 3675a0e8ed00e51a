"""Where `tracecli login` stores keys: ~/.netrc edited in place, the user config's credentials."""

from __future__ import annotations

import netrc
import re
import stat
from pathlib import Path

import pytest
import yaml

from tracecli.config import netrc_file
from tracecli.config.files import ConfigError, load_config_file
from tracecli.config.settings import user_config_path
from tracecli.config.user_config import set_credential_text, store_credential

KEY = "0123456789abcdef0123456789abcdef01234567"

WANDB_STYLE = """\
# my machines
machine api.wandb.ai
  login user
  password oldkey

machine github.com login me password ghp_secret # git
macdef init
  cd /pub
  machine looks-like-a-machine

default login anonymous password guest
"""


def parsed(text: str, tmp_path: Path) -> netrc.netrc:
    path = tmp_path / "check.netrc"
    path.write_text(text)
    return netrc.netrc(str(path))


def test_update_in_place_keeps_everything_else(tmp_path: Path) -> None:
    new = netrc_file.update_text(WANDB_STYLE, "api.wandb.ai", KEY)
    assert new == WANDB_STYLE.replace("oldkey", KEY)
    n = parsed(new, tmp_path)
    assert n.authenticators("api.wandb.ai") == ("user", "", KEY)
    assert n.authenticators("github.com") == ("me", "", "ghp_secret")
    assert "init" in n.macros


def test_new_machine_is_appended(tmp_path: Path) -> None:
    new = netrc_file.update_text(WANDB_STYLE.rstrip("\n"), "127.0.0.1", KEY)
    assert new.startswith(WANDB_STYLE.rstrip("\n") + "\n")
    assert new.endswith(f"machine 127.0.0.1\n  login user\n  password {KEY}\n")
    n = parsed(new, tmp_path)
    assert n.authenticators("127.0.0.1") == ("user", "", KEY)
    assert n.authenticators("api.wandb.ai") == ("user", "", "oldkey")


def test_a_machine_in_a_macdef_body_is_not_an_entry(tmp_path: Path) -> None:
    new = netrc_file.update_text(WANDB_STYLE, "looks-like-a-machine", KEY)
    assert "  machine looks-like-a-machine\n" in new
    assert parsed(new, tmp_path).authenticators("looks-like-a-machine")[2] == KEY


def test_entry_without_password_gets_one(tmp_path: Path) -> None:
    new = netrc_file.update_text("machine h.example login bob\n", "h.example", KEY)
    assert parsed(new, tmp_path).authenticators("h.example") == ("bob", "", KEY)


def test_every_duplicate_entry_is_updated(tmp_path: Path) -> None:
    text = "machine h login a password one\nmachine h login b password two\n"
    new = netrc_file.update_text(text, "H", KEY)
    assert new.count(KEY) == 2 and "one" not in new and "two" not in new


def test_keys_with_spaces_are_refused() -> None:
    with pytest.raises(netrc_file.NetrcError):
        netrc_file.update_text("", "h", "a b")


def test_store_creates_0600_and_tightens_an_open_file(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    netrc_file.store("h.example", KEY, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert netrc_file.lookup("h.example", path) == KEY
    path.chmod(0o644)
    netrc_file.store("h.example", KEY + "x", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert netrc_file.lookup("h.example", path) == KEY + "x"
    assert [p.name for p in tmp_path.iterdir()] == ["netrc"]  # no temp file left behind


def test_lookup_reports_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine\n")
    with pytest.raises(netrc_file.NetrcError, match=str(path)):
        netrc_file.lookup("h", path)
    assert netrc_file.lookup("h", tmp_path / "missing") is None


# -- user config credentials ------------------------------------------------------------


USER = """\
# my tracecli settings
concurrency: 8   # two cores here

credentials:
  # Freeplay cloud
  app.freeplay.ai: "old"
profiles:
  fp: {target: freeplay}
"""


def test_credential_replaced_in_place_keeping_comments() -> None:
    new = set_credential_text(USER, "app.freeplay.ai", KEY)
    assert new == USER.replace('"old"', f'"{KEY}"')


def test_credential_added_to_an_existing_section() -> None:
    new = set_credential_text(USER, "fp.internal", KEY)
    assert "# my tracecli settings" in new and "# two cores here" in new
    data = yaml.safe_load(new)
    assert data["credentials"] == {"app.freeplay.ai": "old", "fp.internal": KEY}
    assert data["profiles"] == {"fp": {"target": "freeplay"}}


def test_credential_section_created() -> None:
    assert yaml.safe_load(set_credential_text("", "h", KEY)) == {"credentials": {"h": KEY}}
    new = set_credential_text("concurrency: 2", "h", KEY)
    assert yaml.safe_load(new) == {"concurrency": 2, "credentials": {"h": KEY}}
    new = set_credential_text("# only a comment\n", "h", KEY)
    assert new.startswith("# only a comment\n")
    assert yaml.safe_load(new) == {"credentials": {"h": KEY}}


def test_flow_style_credentials_fall_back_to_a_rewrite() -> None:
    new = set_credential_text("credentials: {a: b}\n", "h", KEY)
    assert yaml.safe_load(new) == {"credentials": {"a": "b", "h": KEY}}


def test_store_credential_writes_0600_and_loads_back() -> None:
    path = user_config_path()
    store_credential(path, "App.Freeplay.AI", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = load_config_file(path, "user")
    assert cfg is not None
    assert cfg.credentials["app.freeplay.ai"].value.get_secret_value() == KEY
    assert cfg.warnings == []


def test_store_credential_refuses_to_edit_a_broken_file() -> None:
    path = user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("concurrency: lots\n")
    with pytest.raises(ConfigError, match=re.escape("config.yaml:1: concurrency")):
        store_credential(path, "h", KEY)
    assert path.read_text() == "concurrency: lots\n"
