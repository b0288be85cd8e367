"""Off-peak dispatch: how long to wait for the next discounted price window.

A moment is off-peak when the price entry in force then gives it a window
factor below 1. Prices change at dated entries, so the search walks the
model's entries from the one in force at `at` onwards.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from batchkit.job.model import Job, PriceEntry
from batchkit.job.prices import window_factor


def offpeak_wait_seconds(job: Job, model: str, at: datetime) -> float | None:
    """Return the seconds from `at` until the next discount window of `model`.

    Returns 0.0 inside a discount window (factor < 1) of the price entry in
    force at `at`. Returns None when no discount window lies at or after
    `at`: the model has no windows at all, or a later price change ended them.
    Raises ValueError when `at` has no time zone.
    """
    if at.tzinfo is None:
        raise ValueError(f"at = {at!r}: pass a time-zone-aware datetime (UTC)")
    at = at.astimezone(UTC)
    entries = sorted(
        (entry for entry in job.prices if entry.model == model),
        key=lambda entry: entry.since,
    )
    for index, entry in enumerate(entries):
        end = entries[index + 1].since if index + 1 < len(entries) else None
        if end is not None and end <= at:
            continue  # superseded before `at`
        start = max(entry.since, at)
        found = _first_discount(entry, start, end)
        if found is not None:
            return (found - at).total_seconds()
    return None


def _first_discount(
    entry: PriceEntry, start: datetime, end: datetime | None
) -> datetime | None:
    """Return the first moment in [start, end) with a discount, or None."""
    if not any(window.factor < 1 for window in entry.windows):
        return None
    for moment in _boundaries(entry, start):
        if end is not None and moment >= end:
            return None
        if window_factor(entry, moment) < 1:
            return moment
    return None


def _boundaries(entry: PriceEntry, start: datetime) -> Iterator[datetime]:
    """Yield `start`, then every window start and end in the next day, in order.

    The factor is constant between consecutive boundaries and repeats daily,
    so a day of boundaries after `start` covers every case.
    """
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    moments = {start}
    for offset in (0, 1):
        for window in entry.windows:
            for clock in (window.start, window.end):
                moment = datetime.combine(
                    (day + timedelta(days=offset)).date(), clock, tzinfo=UTC
                )
                if start < moment <= start + timedelta(days=1):
                    moments.add(moment)
    yield from sorted(moments)
