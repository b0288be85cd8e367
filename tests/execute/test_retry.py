"""Backoff waits and retry decisions, by error type."""

import random

import pytest

from batchkit.execute.retry import (
    MAX_RATE_LIMITED,
    RetryPolicy,
    is_counted,
    should_retry,
)
from batchkit.providers.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)


def test_backoff_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=60.0, rng=random.Random(3))
    for step in range(10):
        ceiling = min(60.0, 2.0**step)
        waits = [policy.backoff(step) for _ in range(200)]
        assert min(waits) >= 0.0
        assert max(waits) <= ceiling
        # Full jitter spreads over the whole range, not just near the top.
        assert min(waits) < ceiling / 4


def test_header_wait_never_shorter() -> None:
    policy = RetryPolicy(rng=random.Random(5))
    for _ in range(100):
        wait = policy.header_wait(90.0)
        assert 90.0 <= wait <= 99.0


@pytest.mark.parametrize(
    ("error", "is_retried"),
    [
        (ServerError("x"), True),
        (ProviderTimeoutError("x"), True),
        (ProviderConnectionError("x"), True),
        (InvalidResponseError("x"), True),
        (RateLimitError("x"), True),
        (BadRequestError("x"), False),
        (AuthenticationError("x"), False),
    ],
)
def test_should_retry_by_type(error: ProviderError, is_retried: bool) -> None:
    assert should_retry(error, 1, 5, 0) is is_retried


def test_attempt_limit_ends_retries() -> None:
    assert not should_retry(ServerError("x"), 5, 5, 0)


def test_rate_limits_ignore_attempt_limit() -> None:
    assert should_retry(RateLimitError("x"), 5, 5, 3)
    assert not should_retry(RateLimitError("x"), 0, 5, MAX_RATE_LIMITED)


@pytest.mark.parametrize(
    ("error_type", "counted"),
    [("rate_limit", False), ("cancelled", False), ("server", True), (None, True)],
)
def test_is_counted(error_type: str | None, counted: bool) -> None:
    assert is_counted(error_type) is counted
