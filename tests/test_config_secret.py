"""config/secret.py: the settings' secret, printed as pydantic's SecretStr prints, without
pydantic (start-up); pydantic's own SecretStr is accepted wherever one is."""

from __future__ import annotations

import pydantic
import pytest

from tracecli.config.fields import shown_url, strip_userinfo
from tracecli.config.secret import SecretStr


def test_a_secret_never_prints_and_reads_back() -> None:
    key = SecretStr("sk-very-secret")
    theirs = pydantic.SecretStr("sk-very-secret")
    assert key.get_secret_value() == "sk-very-secret"
    assert str(key) == str(theirs) == "**********"
    assert repr(key) == repr(theirs) == "SecretStr('**********')"
    assert f"{key}" == f"{theirs}"
    assert "sk-very" not in f"{key!r} {[key]} {dict(k=key)}"
    assert str(SecretStr("")) == str(pydantic.SecretStr("")) == ""
    assert repr(SecretStr("")) == repr(pydantic.SecretStr(""))
    assert len(key) == len(theirs)


def test_pydantics_secret_counts_as_one_and_equality_is_by_value() -> None:
    assert isinstance(pydantic.SecretStr("k"), SecretStr)
    assert not isinstance("k", SecretStr)
    assert SecretStr("k") == SecretStr("k") != SecretStr("j")
    assert SecretStr("k") != "k"
    assert len({SecretStr("k"), SecretStr("k")}) == 1


@pytest.mark.parametrize(
    ("url", "shown", "stripped"),
    [
        (
            "https://api:KEY123456@host:8443/p?q=1",
            "https://api:**********@host:8443/p?q=1",
            "https://host:8443/p?q=1",
        ),
        ("https://KEY123456@host", "https://**********@host", "https://host"),
        ("https://host/a@b", "https://host/a@b", "https://host/a@b"),
        ("http://a:b@c@host:99999", "http://a:**********@host:99999", "http://host:99999"),
        ("https://api:K@[zz/x", "https://api:**********@[zz/x", "https://[zz/x"),
        ("no-scheme", "no-scheme", "no-scheme"),
        ("https://host?x=@y", "https://host?x=@y", "https://host?x=@y"),
    ],
)
def test_showing_and_stripping_a_url_read_its_userinfo_alike(
    url: str, shown: str, stripped: str
) -> None:
    """One reading of the userinfo for both: even a URL that does not parse loses its key."""
    assert shown_url(url) == shown
    assert strip_userinfo(url) == stripped
