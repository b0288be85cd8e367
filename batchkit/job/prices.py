"""Dated prices and the cost of one attempt."""

from datetime import datetime

from batchkit.job.model import PriceEntry

MILLION = 1_000_000


def find_price(
    prices: tuple[PriceEntry, ...], model: str, at: datetime
) -> PriceEntry | None:
    """Return the price entry of `model` in force at `at` (UTC), or None."""
    found = None
    for entry in prices:
        if entry.model == model and entry.since <= at:
            found = entry  # entries are sorted by model, then since
    return found


def window_factor(entry: PriceEntry, at: datetime) -> float:
    """Return the time-of-day multiplier at `at` (1.0 outside every window)."""
    moment = at.timetz().replace(tzinfo=None)
    for window in entry.windows:
        if window.contains(moment):
            return window.factor
    return 1.0


def attempt_cost(
    prices: tuple[PriceEntry, ...],
    model: str,
    at: datetime,
    *,
    cache_miss_tokens: int,
    cache_hit_tokens: int,
    completion_tokens: int,
    is_batch: bool = False,
) -> float | None:
    """Return the cost in USD of one attempt started at `at`, or None without a price.

    Reasoning tokens are part of `completion_tokens` and billed as output.
    """
    entry = find_price(prices, model, at)
    if entry is None:
        return None
    usd = (
        cache_miss_tokens * entry.input_miss
        + cache_hit_tokens * entry.input_hit
        + completion_tokens * entry.output
    ) / MILLION
    usd *= window_factor(entry, at)
    if is_batch:
        usd *= entry.batch_factor
    return usd
