"""Rate caps: requests and tokens per sliding window, and requests in flight.

A request counts toward the windows when it is admitted; a rejected request
counts toward nothing, as with OpenAI. Tokens are the prompt tokens plus
`max_tokens`, or plus the completion's tokens when the request sets no maximum.

The reset headers give the time until the window has room for the request
again, in the duration format OpenAI uses (`1m30s`, `6s`, `250ms`): whole
seconds, rounded up, from one second on, and milliseconds below.
"""

import math
import time
from collections import deque
from dataclasses import dataclass, field

from batchkit.simulate.config import SimulatorConfig


@dataclass(frozen=True, slots=True)
class Rejection:
    """The cap a request is over, with the message and headers of its 429."""

    cap: str
    message: str
    retry_after: float
    headers: dict[str, str] = field(default_factory=dict)
    # False when waiting cannot help: the request alone is over the cap.
    can_wait: bool = True


def format_duration(seconds: float) -> str:
    """Format `seconds` like Go's time.Duration, as OpenAI's reset headers do."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 1)}ms"
    total = math.ceil(seconds - 1e-9)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


class RateLimiter:
    """Sliding-window request and token counts, and a count of requests in flight."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_sum = 0
        self.in_flight = 0
        self.configure(config)

    def configure(self, config: SimulatorConfig) -> None:
        """Take new caps; the windows keep what they counted."""
        self.rpm = config.rpm
        self.tpm = config.tpm
        self.concurrency = config.concurrency
        self.window = config.window_seconds

    def clear(self) -> None:
        """Forget every counted request."""
        self._requests.clear()
        self._tokens.clear()
        self._token_sum = 0

    @property
    def has_caps(self) -> bool:
        """Return True when any cap is set, so responses carry rate-limit headers."""
        return self.rpm is not None or self.tpm is not None

    def check(self, tokens: int) -> Rejection | None:
        """Return why a request of `tokens` tokens is over a cap, or None."""
        now = time.monotonic()
        self._evict(now)
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            return Rejection(
                "concurrency",
                f"Too many requests in flight: limit {self.concurrency}. "
                "Wait for a response before sending more.",
                1.0,
                self.headers(now, tokens),
            )
        if self.rpm is not None and len(self._requests) >= self.rpm:
            wait = self._requests[0] + self.window - now
            return Rejection(
                "requests",
                f"Rate limit reached on requests per min (RPM): limit {self.rpm}, "
                f"used {len(self._requests)}, requested 1. "
                f"Please try again in {format_duration(wait)}.",
                wait,
                self.headers(now, tokens),
            )
        if self.tpm is not None and self._token_sum + tokens > self.tpm:
            return self._reject_tokens(now, tokens)
        return None

    def _reject_tokens(self, now: float, tokens: int) -> Rejection:
        assert self.tpm is not None
        if tokens > self.tpm:
            message = (
                f"Request too large on tokens per min (TPM): limit {self.tpm}, "
                f"requested {tokens}. Send fewer tokens in one request."
            )
            headers = self.headers(now, tokens)
            return Rejection("tokens", message, self.window, headers, can_wait=False)
        wait = self._token_wait(now, tokens)
        message = (
            f"Rate limit reached on tokens per min (TPM): limit {self.tpm}, "
            f"used {self._token_sum}, requested {tokens}. "
            f"Please try again in {format_duration(wait)}."
        )
        return Rejection("tokens", message, wait, self.headers(now, tokens))

    def admit(self, tokens: int) -> None:
        """Count an admitted request of `tokens` tokens and one more in flight."""
        now = time.monotonic()
        self.in_flight += 1
        if self.rpm is not None:
            self._requests.append(now)
        if self.tpm is not None:
            self._tokens.append((now, tokens))
            self._token_sum += tokens

    def refund(self, tokens: int) -> None:
        """Take back the latest admission, for a request that gets a 429 fault."""
        if self.rpm is not None and self._requests:
            self._requests.pop()
        if self.tpm is not None and self._tokens:
            self._token_sum -= self._tokens.pop()[1]

    def release(self) -> None:
        """Count one request fewer in flight."""
        self.in_flight -= 1

    def headers(self, now: float, tokens: int) -> dict[str, str]:
        """Return the x-ratelimit-* headers for a request of `tokens` tokens."""
        headers: dict[str, str] = {}
        if self.rpm is not None:
            used = len(self._requests)
            wait = self._requests[0] + self.window - now if used >= self.rpm else 0.0
            headers["x-ratelimit-limit-requests"] = str(self.rpm)
            headers["x-ratelimit-remaining-requests"] = str(max(self.rpm - used, 0))
            headers["x-ratelimit-reset-requests"] = format_duration(wait)
        if self.tpm is not None:
            wait = self._token_wait(now, tokens)
            headers["x-ratelimit-limit-tokens"] = str(self.tpm)
            remaining = max(self.tpm - self._token_sum, 0)
            headers["x-ratelimit-remaining-tokens"] = str(remaining)
            headers["x-ratelimit-reset-tokens"] = format_duration(wait)
        return headers

    def _token_wait(self, now: float, tokens: int) -> float:
        # Seconds until enough of the window's tokens expire for `tokens` more.
        assert self.tpm is not None
        excess = self._token_sum + tokens - self.tpm
        if excess <= 0:
            return 0.0
        freed = 0
        for stamp, counted in self._tokens:
            freed += counted
            if freed >= excess:
                return stamp + self.window - now
        return self.window

    def _evict(self, now: float) -> None:
        start = now - self.window
        while self._requests and self._requests[0] <= start:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= start:
            self._token_sum -= self._tokens.popleft()[1]
