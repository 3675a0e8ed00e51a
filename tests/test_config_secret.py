"""config/secret.py: the settings' secret, printed as pydantic's SecretStr prints, without
pydantic (start-up); pydantic's own SecretStr is accepted wherever one is."""

from __future__ import annotations

import pydantic

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
