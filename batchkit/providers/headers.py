"""Retry hints in response headers: Retry-After and the x-ratelimit-* family.

Providers write durations in several shapes: `Retry-After: 3` (seconds) or an
HTTP date, `retry-after-ms: 250`, and OpenAI-style `x-ratelimit-reset-tokens:
1m30s`, `6s`, `250ms` or `1h2m3.5s`.
"""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|h|m|s)")
_SECONDS_PER_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float | None:
    """Return the seconds in `1m30s`, `250ms`, `6s`, `1.5` or `3`, or None if invalid.

    A bare number is seconds. A negative or malformed value returns None.
    """
    text = text.strip().lower()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    total = 0.0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
        position = match.end()
    if position != len(text):
        return None
    return total


def parse_retry_after(text: str, now: datetime | None = None) -> float | None:
    """Return the seconds of wait a `Retry-After` value (seconds or a date) requests."""
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if value else None


def retry_delay(headers: Mapping[str, str]) -> float | None:
    """Return how long the headers ask a client to wait before retrying, or None.

    `retry-after-ms` wins, then `Retry-After`. Otherwise the reset time of the
    exhausted x-ratelimit limit is used (remaining = 0), or the later of the two
    reset times when neither is reported as exhausted. `headers` must look up
    names case-insensitively, as httpx.Headers does.
    """
    value = _header(headers, "retry-after-ms")
    if value is not None:
        milliseconds = parse_duration(value)
        if milliseconds is not None:
            return milliseconds / 1000
    value = _header(headers, "retry-after")
    if value is not None:
        seconds = parse_retry_after(value)
        if seconds is not None:
            return seconds
    resets = {}
    for limit in ("requests", "tokens"):
        value = _header(headers, f"x-ratelimit-reset-{limit}")
        seconds = parse_duration(value) if value is not None else None
        if seconds is not None:
            resets[limit] = seconds
    if not resets:
        return None
    for limit, seconds in resets.items():
        if _header(headers, f"x-ratelimit-remaining-{limit}") == "0":
            return seconds
    return max(resets.values())
