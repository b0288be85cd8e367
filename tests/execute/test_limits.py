"""The request pacer, token window, concurrency gate and AIMD, on a fake clock."""

import asyncio
import random

import pytest

from batchkit.execute.limits import (
    AdaptiveLimits,
    ConcurrencyGate,
    RequestPacer,
    TokenWindow,
)
from batchkit.simulate.requestlog import max_in_window


class FakeClock:
    """A monotonic clock that advances only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _dispatch_greedily(rpm: int, seconds: float, jitter: float) -> list[float]:
    """Dispatch whenever the pacer allows, waking up late by up to `jitter` s."""
    clock = FakeClock()
    pacer = RequestPacer(rpm, clock=clock)
    rng = random.Random(7)
    end = clock.now + seconds
    times = []
    while clock.now < end:
        wait = pacer.delay(clock.now)
        if wait > 0:
            clock.now += wait + rng.uniform(0, jitter)
            continue
        pacer.record(clock.now)
        times.append(clock.now)
    return times


@pytest.mark.parametrize(
    ("rpm", "jitter"),
    [
        (60, 0.0),
        (60, 0.02),
        (1_200, 0.0),
        (1_200, 0.02),
        (6_000, 0.0),
        (6_000, 0.002),
        (6_000, 0.02),
        (60_000, 0.0),
        (60_000, 0.002),
    ],
)
def test_pacer_holds_and_uses_the_cap(rpm: int, jitter: float) -> None:
    # `jitter` is the most the event loop wakes up late, here up to two
    # dispatch intervals at 6,000/min; the pacer must catch up.
    times = _dispatch_greedily(rpm, 180.0, jitter)
    assert max_in_window(times, 60.0) <= rpm
    assert max_in_window(times, 1.0) <= max(1, int(1.1 * rpm / 60))
    first_minute = sum(1 for stamp in times if stamp < times[0] + 60.0)
    assert first_minute >= 0.97 * rpm


def test_pacer_spaces_evenly() -> None:
    clock = FakeClock()
    pacer = RequestPacer(60, clock=clock)
    pacer.record(clock.now)
    # Aimed 1 % under the cap (60 / 59.4 s), but the one-second guard window
    # is 1.02 s long, so at 60 per minute that window sets the spacing.
    assert pacer.delay(clock.now) == pytest.approx(1.02)


def test_pacer_pause_delays_dispatch() -> None:
    clock = FakeClock()
    pacer = RequestPacer(60_000, clock=clock)
    pacer.pause(90.0)
    assert pacer.delay(clock.now) == pytest.approx(90.0)
    clock.now += 90.0
    assert pacer.delay(clock.now) == 0.0


def test_pacer_factor_lowers_rate() -> None:
    clock = FakeClock()
    pacer = RequestPacer(6_000, clock=clock)
    pacer.factor = 0.5
    pacer.record(clock.now)
    assert pacer.delay(clock.now) == pytest.approx(60 / (3_000 * 0.99))


def test_token_window_waits_for_room() -> None:
    clock = FakeClock()
    window = TokenWindow(1_000, clock=clock)
    window.reserve(600, clock.now)
    assert window.delay(300, clock.now) == 0.0
    assert window.delay(500, clock.now) == pytest.approx(60.0)
    clock.now += 30.0
    assert window.delay(500, clock.now) == pytest.approx(30.0)


def test_token_window_settles_to_usage() -> None:
    clock = FakeClock()
    window = TokenWindow(1_000, clock=clock)
    entry = window.reserve(900, clock.now)
    assert window.delay(500, clock.now) > 0
    window.settle(entry, 200)
    assert window.last_minute() == 200
    assert window.delay(500, clock.now) == 0.0


def test_token_window_lets_oversized_request_alone() -> None:
    clock = FakeClock()
    window = TokenWindow(1_000, clock=clock)
    assert window.delay(5_000, clock.now) == 0.0


def test_token_window_without_cap() -> None:
    window = TokenWindow(None, clock=FakeClock())
    assert window.delay(10**9, 0.0) == 0.0


def test_gate_limit_lowers_in_flight() -> None:
    async def scenario() -> list[int]:
        gate = ConcurrencyGate(4)
        for _ in range(4):
            await gate.acquire()
        gate.set_limit(2)
        waiter = asyncio.create_task(gate.acquire())
        seen = []
        for _ in range(3):
            gate.release()
            await asyncio.sleep(0)
            seen.append(gate.in_flight)
        await waiter
        return seen

    # The fifth request waits until in flight drops under the new limit of 2.
    assert asyncio.run(scenario()) == [3, 2, 2]


def test_gate_limit_never_above_cap() -> None:
    gate = ConcurrencyGate(4)
    gate.set_limit(100)
    assert gate.limit == 4


def _adaptive(clock: FakeClock) -> AdaptiveLimits:
    return AdaptiveLimits(
        RequestPacer(1_000, clock=clock),
        TokenWindow(10_000, clock=clock),
        ConcurrencyGate(10),
        clock=clock,
    )


def test_aimd_decreases_once_per_cooldown() -> None:
    clock = FakeClock()
    limits = _adaptive(clock)
    # Two 429s are not sustained yet; the third is.
    assert not limits.on_rate_limited()
    assert not limits.on_rate_limited()
    assert limits.on_rate_limited()
    assert not limits.on_rate_limited()
    assert limits.factor == pytest.approx(0.7)
    assert limits.gate.limit == 7
    assert limits.pacer.rpm == pytest.approx(700)
    clock.now += 2.5
    assert limits.on_rate_limited()
    assert limits.factor == pytest.approx(0.49)


def test_aimd_recovers_without_429s() -> None:
    clock = FakeClock()
    limits = _adaptive(clock)
    for _ in range(3):
        limits.on_rate_limited()
    limits.on_success()
    assert limits.factor == pytest.approx(0.7)
    for _ in range(10):
        clock.now += 5.0
        limits.on_success()
    assert limits.factor == pytest.approx(1.0)
    assert limits.gate.limit == 10


def test_aimd_floor() -> None:
    clock = FakeClock()
    limits = _adaptive(clock)
    for _ in range(30):
        clock.now += 3.0
        limits.on_rate_limited()
    assert limits.factor == pytest.approx(0.05)
    assert limits.gate.limit == 1


def test_aimd_ignores_rare_429s() -> None:
    clock = FakeClock()
    limits = _adaptive(clock)
    for step in range(1_000):
        clock.now += 0.01
        if step % 50 == 49:  # 2 % of the responses
            assert not limits.on_rate_limited()
        else:
            limits.on_success()
    assert limits.factor == pytest.approx(1.0)
    assert limits.gate.limit == 10


def test_aimd_lowers_on_sustained_429s() -> None:
    clock = FakeClock()
    limits = _adaptive(clock)
    lowered = False
    for step in range(500):
        clock.now += 0.01
        if step % 4 == 0:  # 25 % of the responses
            lowered = limits.on_rate_limited() or lowered
        else:
            limits.on_success()
    assert lowered
    assert limits.factor < 1.0
