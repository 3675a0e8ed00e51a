"""The retry policy as a pure function: every status class, errors, Retry-After, deadline."""

from __future__ import annotations

import email.utils
import random
import ssl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracecli.targets.retry import (
    BASE_DELAY,
    MAX_DELAY,
    Action,
    Backoff,
    backoff_delay,
    classify_error,
    decide,
    retry_after,
)


class Top:
    """An rng that always draws the top of the range: the backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Bottom:
    def uniform(self, a: float, b: float) -> float:
        return a


def d(status=None, error=None, attempt=1, elapsed=0.0, headers=None, max_retry_time=300.0, **kw):
    kw.setdefault("rng", Top())
    return decide(status, error, attempt, elapsed, headers, max_retry_time, **kw)


def test_production_defaults():
    assert (BASE_DELAY, MAX_DELAY) == (0.5, 30.0)
    assert Backoff() == Backoff(0.5, 30.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_ok(status):
    assert d(status).action is Action.OK


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 507, 520, 524, 599])
def test_transient_statuses_are_retried(status):
    dec = d(status)
    assert dec.action is Action.RETRY
    assert dec.retry
    assert 0 <= dec.delay <= BASE_DELAY
    assert str(status) in dec.reason


@pytest.mark.parametrize("status", [400, 404, 409, 422, 413])
def test_content_refusals_split(status):
    assert d(status).action is Action.SPLIT
    assert d(status, can_split=False).action is Action.REJECT


@pytest.mark.parametrize("status", [400, 404, 409, 422, 413])
def test_content_refusals_are_never_retried_even_with_retry_after(status):
    dec = d(status, headers={"Retry-After": "1"}, attempt=1)
    assert dec.action is not Action.RETRY


@pytest.mark.parametrize("status", [401, 403])
def test_auth_stops_everything(status):
    assert d(status).action is Action.AUTH
    assert d(status, attempt=5, elapsed=1000).action is Action.AUTH


@pytest.mark.parametrize("status", [301, 302, 307, 405, 410, 411, 415, 418, 501, 505, 100])
def test_other_statuses_reject(status):
    assert d(status).action is Action.REJECT


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.WriteTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
    ],
)
def test_network_errors_are_retried(error):
    dec = d(None, error)
    assert dec.action is Action.RETRY
    assert dec.reason


def test_certificate_failure_is_fatal_not_retried():
    exc = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    try:
        raise exc from ssl.SSLCertVerificationError(1, "certificate verify failed")
    except httpx.ConnectError as e:
        dec = d(None, e)
    assert dec.action is Action.FATAL
    assert "certificate" in dec.reason


@pytest.mark.parametrize(
    "error", [httpx.UnsupportedProtocol("ftp"), httpx.InvalidURL("bad"), ValueError("x")]
)
def test_local_errors_are_fatal(error):
    assert d(None, error).action is Action.FATAL


def test_no_status_and_no_error_is_fatal():
    assert d(None, None).action is Action.FATAL


def test_classify_error_descriptions():
    assert classify_error(httpx.ReadTimeout("x")) == (True, "read timeout")
    assert classify_error(httpx.RemoteProtocolError("x"))[0]


# -- backoff -------------------------------------------------------------------------------


def test_exponential_ceiling_doubles_then_caps():
    ceilings = [backoff_delay(n, Top()) for n in range(1, 12)]
    assert ceilings[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(ceilings[6:]) == {30.0}


def test_full_jitter_can_be_zero():
    assert backoff_delay(5, Bottom()) == 0.0


def test_backoff_huge_attempt_does_not_overflow():
    assert backoff_delay(10_000, Top()) == 30.0


def test_backoff_from_env(monkeypatch):
    monkeypatch.setenv("TRACECLI_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("TRACECLI_RETRY_MAX_DELAY", "0.05")
    b = Backoff.from_env()
    assert (b.base, b.cap) == (0.01, 0.05)
    assert backoff_delay(10, Top(), b) == 0.05
    monkeypatch.setenv("TRACECLI_RETRY_BASE_DELAY", "nonsense")
    monkeypatch.setenv("TRACECLI_RETRY_MAX_DELAY", "-3")
    assert Backoff.from_env() == Backoff()


def test_jitter_is_spread():
    rng = random.Random(7)
    draws = [backoff_delay(4, rng) for _ in range(2000)]
    assert min(draws) < 0.2 and max(draws) > 3.8  # full range [0, 4] is used
    assert 1.7 < sum(draws) / len(draws) < 2.3


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0, max_value=10, allow_nan=False),
    cap=st.floats(min_value=0, max_value=100, allow_nan=False),
    seed=st.integers(),
)
def test_backoff_within_bounds(attempt, base, cap, seed):
    delay = backoff_delay(attempt, random.Random(seed), Backoff(base, cap))
    assert 0.0 <= delay <= min(cap, base * 2 ** min(attempt - 1, 62)) + 1e-9


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_seconds_and_ms():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": " 1.5 "}) == 1.5
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    # retry-after-ms wins (it is the more precise; Stainless/OpenAI clients do the same)
    assert retry_after({"Retry-After": "9", "retry-after-ms": "100"}) == 0.1
    assert retry_after({"Retry-After": "-5"}) == 0.0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({"Retry-After": "inf"}) is None
    assert retry_after({"retry-after-ms": "x", "Retry-After": "2"}) == 2.0
    assert retry_after({}) is None
    assert retry_after(None) is None


def test_retry_after_http_date():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert retry_after({"Retry-After": date}, now=now) == pytest.approx(20.0)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert retry_after({"Retry-After": past}, now=now) == 0.0


def test_retry_after_raises_the_wait_but_never_lowers_it():
    dec = d(503, headers={"Retry-After": "7"}, rng=Bottom())
    assert dec.action is Action.RETRY and dec.delay == 7.0
    # a Retry-After shorter than the backoff does not shorten it
    dec = d(503, attempt=6, headers={"Retry-After": "1"}, rng=Top())
    assert dec.delay == 16.0


def test_retry_after_may_exceed_the_backoff_cap():
    dec = d(429, headers={"Retry-After": "120"}, elapsed=10)
    assert dec.action is Action.RETRY and dec.delay == 120.0


def test_retry_after_http_date_in_decide():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    dec = d(429, headers={"Retry-After": date}, now=now, rng=Bottom())
    assert dec.delay == pytest.approx(12.0)


# -- deadline ------------------------------------------------------------------------------


def test_give_up_when_the_retry_time_is_used():
    dec = d(503, attempt=9, elapsed=300.0)
    assert dec.action is Action.GIVE_UP
    assert "gave up" in dec.reason and "503" in dec.reason
    assert d(None, httpx.ConnectError("x"), elapsed=301).action is Action.GIVE_UP


def test_zero_retry_time_never_retries():
    assert d(503, max_retry_time=0).action is Action.GIVE_UP


def test_backoff_is_shortened_to_land_on_the_deadline():
    dec = d(503, attempt=10, elapsed=295.0)  # ceiling 30 s, but 5 s left
    assert dec.action is Action.RETRY and dec.delay == pytest.approx(5.0)


def test_retry_after_beyond_the_deadline_gives_up_at_once():
    dec = d(429, headers={"Retry-After": "60"}, elapsed=250.0)
    assert dec.action is Action.GIVE_UP
    assert "asked to wait 60 s" in dec.reason


def test_retry_after_exactly_at_the_deadline_is_honoured():
    dec = d(429, headers={"Retry-After": "50"}, elapsed=250.0)
    assert dec.action is Action.RETRY and dec.delay == 50.0


def test_auth_and_split_are_not_affected_by_the_deadline():
    assert d(401, elapsed=1e9).action is Action.AUTH
    assert d(413, elapsed=1e9).action is Action.SPLIT
    assert d(200, elapsed=1e9).action is Action.OK


def test_network_errors_have_no_retry_after():
    dec = d(None, httpx.ReadTimeout("t"), headers={"Retry-After": "60"}, rng=Bottom())
    assert dec.action is Action.RETRY and dec.delay == 0.0


def test_nan_elapsed_gives_up():
    assert d(503, elapsed=float("nan")).action is Action.GIVE_UP


# -- properties ----------------------------------------------------------------------------

statuses = st.one_of(st.none(), st.integers(min_value=100, max_value=599))
headers = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "Retry-After": st.one_of(
                st.integers(-10, 10_000).map(str), st.text(max_size=8), st.just("1.5")
            ),
            "retry-after-ms": st.one_of(st.integers(-10, 10_000_000).map(str), st.text(max_size=5)),
        },
    ),
)


@given(
    status=statuses,
    attempt=st.integers(min_value=1, max_value=100),
    elapsed=st.floats(min_value=0, max_value=1000, allow_nan=False),
    hdrs=headers,
    max_retry_time=st.floats(min_value=0, max_value=1000, allow_nan=False),
    seed=st.integers(),
)
def test_decision_bounds(status, attempt, elapsed, hdrs, max_retry_time, seed):
    error = httpx.ReadTimeout("t") if status is None else None
    dec = decide(status, error, attempt, elapsed, hdrs, max_retry_time, random.Random(seed))
    if dec.action is Action.RETRY:
        # never sleeps past the deadline, never negative
        assert 0.0 <= dec.delay <= max_retry_time - elapsed + 1e-9
        # waits at least what the server asked (a network error has no answer to ask)
        asked = retry_after(hdrs) if status is not None else None
        if asked is not None:
            assert dec.delay >= asked - 1e-9
        # and, without Retry-After, no longer than the backoff ceiling
        else:
            assert dec.delay <= min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)) + 1e-9
        assert status is None or status in (408, 429) or 500 <= status < 600
    else:
        assert dec.delay == 0.0
    if status is not None and status in (400, 404, 409, 422, 413):
        assert dec.action is Action.SPLIT
    if status in (401, 403):
        assert dec.action is Action.AUTH
    if status is not None and 200 <= status < 300:
        assert dec.action is Action.OK
    if elapsed >= max_retry_time and dec.action is not Action.OK:
        assert dec.action is not Action.RETRY
