"""When to retry a failed attempt, and after how long.

Transient errors wait with exponential backoff and full jitter: a random
delay between 0 and min(cap, base * 2**n), where n counts this request's
backoff waits so far. A wait that a response header asked for (Retry-After,
x-ratelimit-reset-*) is used as given and does not advance n, so a long
header wait leaves the backoff schedule where it was.
"""

import random
from dataclasses import dataclass

from batchkit.providers.errors import ProviderError, RateLimitError

# error_type values that do not count towards max_attempts (see select.py).
UNCOUNTED_ERRORS = frozenset({"rate_limit", "cancelled"})
# 429s a request may meet in one run before it is left for the next run.
MAX_RATE_LIMITED = 100
HEADER_JITTER = 0.1  # up to 10 % added to a header's wait, so retries spread out


@dataclass
class RetryPolicy:
    """Backoff settings, in seconds."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random | None = None

    def backoff(self, steps: int) -> float:
        """Return a full-jitter delay for the `steps`-th backoff wait (from 0)."""
        ceiling = min(self.cap, self.base * 2.0**steps)
        return (self.rng or random).uniform(0.0, ceiling)

    def header_wait(self, seconds: float) -> float:
        """Return the header's wait plus a little jitter, never less than asked."""
        return seconds * (1.0 + (self.rng or random).uniform(0.0, HEADER_JITTER))


def is_counted(error_type: str | None) -> bool:
    """Return whether an attempt counts towards its stage's max_attempts."""
    return error_type not in UNCOUNTED_ERRORS


def should_retry(
    error: ProviderError, counted: int, max_attempts: int, rate_limited: int
) -> bool:
    """Return whether a failed attempt is sent again in this run."""
    if not error.is_retryable:
        return False
    if isinstance(error, RateLimitError):
        return rate_limited < MAX_RATE_LIMITED
    return counted < max_attempts
