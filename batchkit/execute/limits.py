"""Request rate, token rate and concurrency caps, and their AIMD adjustment.

The request pacer spaces dispatches evenly, one every 60/R seconds (GCRA,
the generic cell rate algorithm), with a catch-up allowance so a late
wake-up of the event loop does not lose its slots. Two sliding windows (60 s
and 1 s) guard the hard limits. No 60 seconds see more than R dispatches,
and no second more than 110 % of R/60, except between 60 and about 110 per
minute (see `_limits`). The pacer aims 1 % under the cap so the provider's
clock and network jitter do not push a window over it.

All times are `time.monotonic()` seconds. The limiters are not thread-safe:
one event loop uses them.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

RATE_HEADROOM = 0.99  # share of the cap the pacer aims at
SECOND_SHARE = 1.10  # most of R/60 allowed in any one second
# The 1 s guard aims 3 % under that share. After a catch-up burst, requests
# that left evenly arrived up to 2 % closer together at the simulator: 112
# in one second at 6,000/min when the guard was at exactly 110 %.
SECOND_GUARD_SHARE = SECOND_SHARE * 0.97
# How far behind its schedule the pacer may fall and still catch up. A busy
# event loop wakes up tens of milliseconds late, which at 6,000/min is
# several dispatch intervals; the guard windows bound the catch-up burst.
CATCH_UP_SECONDS = 0.25
MIN_FACTOR = 0.05  # AIMD never lowers a cap below this share of it
# The guard windows are a little longer than 60 s and 1 s, so that requests
# that arrive a few milliseconds apart from when they left still fit the
# provider's windows.
MINUTE_WINDOW = 60.2
SECOND_WINDOW = 1.02

Clock = Callable[[], float]


class RequestPacer:
    """Evenly spaced dispatch under a requests-per-minute cap that may be lowered."""

    def __init__(self, rpm: float, clock: Clock = time.monotonic) -> None:
        self.cap = float(rpm)
        self.factor = 1.0  # lowered by AIMD after 429s
        self.clock = clock
        self._next_at = 0.0  # theoretical arrival time of the next dispatch
        self._minute: deque[float] = deque()
        self._second: deque[float] = deque()
        self.paused_until = 0.0

    @property
    def rpm(self) -> float:
        """Return the cap in force now, in requests per minute."""
        return max(1.0, self.cap * self.factor)

    def _limits(self) -> tuple[int, int]:
        rpm = self.rpm
        per_minute = max(1, math.floor(rpm))
        # NOTE: between 60 and about 110 per minute, 110 % of R/60 rounds
        # down to 1 per second, which would hold the rate near 60/min. The
        # guard then allows the rounded-up share instead, so the rate can
        # reach R, and a second may see 2 requests.
        per_second = max(
            1,
            math.floor(rpm / 60 * SECOND_GUARD_SHARE),
            math.ceil(rpm / 60 * RATE_HEADROOM),
        )
        return per_minute, per_second

    def _forget(self, now: float) -> None:
        while self._minute and self._minute[0] <= now - MINUTE_WINDOW:
            self._minute.popleft()
        while self._second and self._second[0] <= now - SECOND_WINDOW:
            self._second.popleft()

    def delay(self, now: float) -> float:
        """Return the seconds until the next dispatch is allowed (0 if now)."""
        self._forget(now)
        waits = [self.paused_until - now, self._next_at - now]
        per_minute, per_second = self._limits()
        if len(self._minute) >= per_minute:
            waits.append(self._minute[-per_minute] + MINUTE_WINDOW - now)
        if len(self._second) >= per_second:
            waits.append(self._second[-per_second] + SECOND_WINDOW - now)
        return max(0.0, *waits)

    def record(self, now: float) -> None:
        """Count one dispatch at `now` and schedule the next slot."""
        interval = 60.0 / (self.rpm * RATE_HEADROOM)
        # A dispatch a little late keeps the schedule (the next ones come
        # sooner); one later than that, or the first, starts a new schedule.
        late = now - self._next_at
        start = self._next_at if late <= CATCH_UP_SECONDS else now
        self._next_at = start + interval
        self._minute.append(now)
        self._second.append(now)

    async def acquire(self) -> None:
        """Wait for the next slot and take it."""
        while True:
            now = self.clock()
            wait = self.delay(now)
            if wait <= 0:
                self.record(now)
                return
            await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Dispatch nothing for `seconds`, as a provider's retry header requested."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def last_minute(self) -> int:
        """Return the number of dispatches in the last 60 seconds."""
        self._forget(self.clock())
        return len(self._minute)


class TokenWindow:
    """A tokens-per-minute cap over a sliding 60-second window.

    Each request reserves its prompt estimate plus max_tokens when it is
    dispatched; `settle` replaces that with the usage the response reports.
    """

    def __init__(self, tpm: int | None, clock: Clock = time.monotonic) -> None:
        self.cap = tpm
        self.factor = 1.0
        self.clock = clock
        self._entries: deque[list[float]] = deque()  # [time, tokens]
        self.total = 0.0

    def _forget(self, now: float) -> None:
        while self._entries and self._entries[0][0] <= now - 60.0:
            self.total -= self._entries.popleft()[1]

    def delay(self, tokens: int, now: float) -> float:
        """Return the seconds until `tokens` fit under the cap (0 if they fit now)."""
        if self.cap is None:
            return 0.0
        self._forget(now)
        cap = self.cap * self.factor
        if self.total + tokens <= cap or not self._entries:
            return 0.0  # a request larger than the cap goes alone
        excess = self.total + tokens - cap
        for moment, used in self._entries:
            excess -= used
            if excess <= 0:
                return max(0.0, moment + 60.0 - now)
        return max(0.0, self._entries[-1][0] + 60.0 - now)

    def reserve(self, tokens: int, now: float) -> list[float]:
        """Record `tokens` at `now`; return the entry to settle later."""
        entry = [now, float(tokens)]
        self._entries.append(entry)
        self.total += tokens
        return entry

    def settle(self, entry: list[float], tokens: int) -> None:
        """Replace a reservation with the tokens the response reported."""
        if self._entries and entry[0] > self.clock() - 60.0:
            self.total += tokens - entry[1]
        entry[1] = float(tokens)

    async def acquire(self, tokens: int) -> list[float]:
        """Wait until `tokens` fit, then reserve them."""
        while True:
            now = self.clock()
            wait = self.delay(tokens, now)
            if wait <= 0:
                return self.reserve(tokens, now)
            await asyncio.sleep(min(wait, 1.0))

    def last_minute(self) -> int:
        """Return the tokens used or reserved in the last 60 seconds."""
        self._forget(self.clock())
        return round(self.total)


class ConcurrencyGate:
    """A cap on requests in flight whose limit can be lowered and raised."""

    def __init__(self, limit: int) -> None:
        self.cap = limit
        self.limit = limit
        self.in_flight = 0
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait until fewer than `limit` requests are in flight, then count one."""
        while self.in_flight >= self.limit:
            self._changed.clear()
            await self._changed.wait()
        self.in_flight += 1

    def release(self) -> None:
        """Count one request as finished."""
        self.in_flight -= 1
        self._changed.set()

    def set_limit(self, limit: int) -> None:
        """Change the limit; requests already in flight are not cancelled."""
        self.limit = max(1, min(self.cap, limit))
        self._changed.set()


class AdaptiveLimits:
    """AIMD: sustained 429s lower the rate and concurrency caps; success restores them.

    A 429 lowers the caps (multiplies them by `decrease`) only when at least
    `min_count` 429s make up at least `min_share` of the responses of the last
    `window` seconds, and at most once per `cooldown`. So a burst from one
    overload counts once, and a provider that returns an occasional random
    429 does not throttle the run. Every `recover_after` seconds in which the
    share stays below `min_share`, the caps grow by `increase` of their
    configured value.
    """

    def __init__(
        self,
        pacer: RequestPacer,
        tokens: TokenWindow,
        gate: ConcurrencyGate,
        *,
        decrease: float = 0.7,
        increase: float = 0.05,
        cooldown: float = 2.0,
        recover_after: float = 5.0,
        window: float = 10.0,
        min_share: float = 0.1,
        min_count: int = 3,
        clock: Clock = time.monotonic,
    ) -> None:
        self.pacer = pacer
        self.tokens = tokens
        self.gate = gate
        self.decrease = decrease
        self.increase = increase
        self.cooldown = cooldown
        self.recover_after = recover_after
        self.window = window
        self.min_share = min_share
        self.min_count = min_count
        self.clock = clock
        self.factor = 1.0
        self._last_decrease = -math.inf
        self._last_change = clock()
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, was a 429)
        self._limited = 0  # 429s in _outcomes
        # Whether 429s reached min_share of the window at the last response.
        self.is_sustained = False

    def _apply(self) -> None:
        self.pacer.factor = self.factor
        self.tokens.factor = self.factor
        self.gate.set_limit(max(1, math.floor(self.gate.cap * self.factor)))

    def _record(self, now: float, was_limited: bool) -> float:
        """Add one response and return the 429 share of the window."""
        self._outcomes.append((now, was_limited))
        self._limited += was_limited
        while self._outcomes and self._outcomes[0][0] < now - self.window:
            _, old = self._outcomes.popleft()
            self._limited -= old
        share = self._limited / len(self._outcomes)
        self.is_sustained = share >= self.min_share and self._limited >= self.min_count
        return share

    def on_rate_limited(self) -> bool:
        """Lower the caps when 429s are sustained and the cooldown has passed.

        Returns True when the caps were lowered.
        """
        now = self.clock()
        self._record(now, True)
        if not self.is_sustained or now - self._last_decrease < self.cooldown:
            return False
        self._last_decrease = now
        self._last_change = now
        self.factor = max(MIN_FACTOR, self.factor * self.decrease)
        self._apply()
        return True

    def on_success(self) -> None:
        """Raise the caps one step if 429s stayed rare for `recover_after` seconds."""
        now = self.clock()
        share = self._record(now, False)
        if self.factor >= 1.0 or share >= self.min_share:
            return
        if now - self._last_change < self.recover_after:
            return
        self._last_change = now
        self.factor = min(1.0, self.factor + self.increase)
        self._apply()
