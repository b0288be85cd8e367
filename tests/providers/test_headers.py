"""Retry hints parsed from Retry-After and x-ratelimit-reset-* headers."""

from datetime import UTC, datetime

import httpx
import pytest

from batchkit.providers.headers import parse_duration, parse_retry_after, retry_delay


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("6s", 6.0),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("3", 3.0),
        ("1.5", 1.5),
        ("0s", 0.0),
        ("20us", 20e-6),
        (" 2s ", 2.0),
    ],
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1x", "-3", "s", "1m30", "m30s", "1 m"])
def test_parse_duration_invalid(text: str) -> None:
    assert parse_duration(text) is None


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
    seconds = parse_retry_after("Fri, 04 Dec 2026 12:00:30 GMT", now=now)
    assert seconds == pytest.approx(30.0)


def test_parse_retry_after_past_date_is_zero() -> None:
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 04 Dec 2026 11:00:00 GMT", now=now) == 0.0


def test_parse_retry_after_garbage() -> None:
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"x-ratelimit-reset-tokens": "1m30s"}, 90.0),
        ({"x-ratelimit-reset-requests": "250ms"}, 0.25),
        (
            {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "6s"},
            6.0,
        ),
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "6s",
            },
            2.0,
        ),
        ({"Retry-After": "3", "x-ratelimit-reset-tokens": "1m"}, 3.0),
        ({"retry-after-ms": "1500", "Retry-After": "3"}, 1.5),
        ({}, None),
        ({"Retry-After": "later"}, None),
    ],
)
def test_retry_delay(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_delay(httpx.Headers(headers)) == (
        None if seconds is None else pytest.approx(seconds)
    )
