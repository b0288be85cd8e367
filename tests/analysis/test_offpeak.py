"""offpeak_wait_seconds: discount windows, midnight, and price changes."""

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchkit.execute.offpeak import offpeak_wait_seconds
from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.job.prices import find_price, window_factor

JOB = """
[job]
name = "offpeak"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id FROM products"
key = ["id"]

[provider]
model = "reasoner"

[[stages]]
name = "doc"
messages = [{{ role = "user", text = "Hello" }}]

{prices}
"""

# A flat price, then a night discount from 16:30 to 00:30 UTC, then a flat
# price again: the shape of DeepSeek's price history in 2025.
DEEPSEEK_LIKE = """
[[prices]]
model = "reasoner"
since = 2025-01-20
output = 2.19

[[prices]]
model = "reasoner"
since = 2025-02-26
output = 2.19
windows = [{ start = "16:30", end = "00:30", factor = 0.25 }]

[[prices]]
model = "reasoner"
since = 2025-09-05
output = 1.68

[[prices]]
model = "flat"
since = 2025-01-01
output = 1.0
"""


def make_job(tmp_path: Path, prices: str) -> Job:
    """Write a job with `prices` and load it."""
    (tmp_path / "products.csv").write_text("id\n1\n", encoding="utf-8")
    path = tmp_path / "job.toml"
    path.write_text(JOB.format(prices=prices), encoding="utf-8")
    return load_job(path)


def utc(text: str) -> datetime:
    """Parse an ISO time as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


HOUR = 3600.0


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-03-01T17:00:00", 0.0),  # inside, before midnight
        ("2025-03-01T16:30:00", 0.0),  # at the window's start
        ("2025-03-02T00:10:00", 0.0),  # inside, after midnight
        ("2025-03-02T00:30:00", 16 * HOUR),  # at the window's end
        ("2025-03-01T12:00:00", 4.5 * HOUR),  # outside, same day
        ("2025-03-01T16:29:59", 1.0),
        # The flat entry is in force, but the discount entry starts at
        # midnight inside its own window.
        ("2025-02-25T20:00:00", 4 * HOUR),
        ("2025-02-25T00:00:00", 24 * HOUR),
        # A window that the price change cuts short still counts until then.
        ("2025-09-04T23:59:00", 0.0),
        ("2025-09-04T12:00:00", 4.5 * HOUR),
    ],
)
def test_wait_seconds(tmp_path: Path, at: str, expected: float) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    assert offpeak_wait_seconds(job, "reasoner", utc(at)) == expected


@pytest.mark.parametrize(
    "at",
    [
        "2025-09-05T00:00:00",  # the change ends the windows at midnight
        "2025-09-05T00:10:00",  # the old window would still be open here
        "2025-09-05T17:00:00",
        "2026-01-01T12:00:00",
    ],
)
def test_price_change_ends_windows(tmp_path: Path, at: str) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    assert offpeak_wait_seconds(job, "reasoner", utc(at)) is None


def test_model_without_windows(tmp_path: Path) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    assert offpeak_wait_seconds(job, "flat", utc("2025-03-01T17:00:00")) is None


def test_model_without_prices(tmp_path: Path) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    assert offpeak_wait_seconds(job, "unknown", utc("2025-03-01T17:00:00")) is None


def test_before_first_price(tmp_path: Path) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    at = utc("2024-12-31T00:00:00")
    wait = offpeak_wait_seconds(job, "reasoner", at)
    assert wait == (utc("2025-02-26T00:00:00") - at).total_seconds()


def test_change_inside_new_window(tmp_path: Path) -> None:
    prices = """
[[prices]]
model = "reasoner"
since = 2025-01-01
output = 1.0

[[prices]]
model = "reasoner"
since = 2025-03-01T20:00:00Z
output = 1.0
windows = [{ start = "16:30", end = "00:30", factor = 0.5 }]
"""
    job = make_job(tmp_path, prices)
    assert offpeak_wait_seconds(job, "reasoner", utc("2025-03-01T12:00:00")) == 8 * HOUR


def test_peak_window_is_not_offpeak(tmp_path: Path) -> None:
    prices = """
[[prices]]
model = "reasoner"
since = 2025-01-01
output = 1.0
windows = [
    { start = "08:00", end = "12:00", factor = 1.5 },
    { start = "10:00", end = "14:00", factor = 0.5 },
]
"""
    job = make_job(tmp_path, prices)
    # 11:00 lies in both; the first window listed sets the price, as in
    # attempt_cost, so the discount starts when the peak window ends.
    assert offpeak_wait_seconds(job, "reasoner", utc("2025-03-01T11:00:00")) == HOUR
    assert offpeak_wait_seconds(job, "reasoner", utc("2025-03-01T13:00:00")) == 0.0
    # The next day's 10:00 to 12:00 is peak again, so the wait runs to 12:00.
    assert offpeak_wait_seconds(job, "reasoner", utc("2025-03-01T15:00:00")) == (
        21 * HOUR
    )


def test_only_peak_windows(tmp_path: Path) -> None:
    prices = """
[[prices]]
model = "reasoner"
since = 2025-01-01
output = 1.0
windows = [{ start = "08:00", end = "12:00", factor = 1.5 }]
"""
    job = make_job(tmp_path, prices)
    assert offpeak_wait_seconds(job, "reasoner", utc("2025-03-01T11:00:00")) is None


def test_other_time_zone(tmp_path: Path) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    beijing = timezone(timedelta(hours=8))
    # 12:00 in UTC+8 is 04:00 UTC, 12.5 hours before the window opens.
    at = datetime(2025, 3, 1, 12, 0, tzinfo=beijing)
    assert offpeak_wait_seconds(job, "reasoner", at) == 12.5 * HOUR


def test_naive_time_rejected(tmp_path: Path) -> None:
    job = make_job(tmp_path, DEEPSEEK_LIKE)
    with pytest.raises(ValueError, match="time-zone-aware"):
        offpeak_wait_seconds(job, "reasoner", datetime(2025, 3, 1, 12, 0))


MINUTE = timedelta(minutes=1)
clock_times = st.times().map(lambda moment: moment.replace(second=0, microsecond=0))


@settings(max_examples=40, deadline=None)
@given(
    start=clock_times,
    end=clock_times,
    factor=st.sampled_from([0.25, 0.5, 1.5]),
    change_minutes=st.integers(min_value=1, max_value=3 * 24 * 60),
    at_minutes=st.integers(min_value=0, max_value=2 * 24 * 60),
)
def test_wait_lands_on_first_discount(
    tmp_path_factory: pytest.TempPathFactory,
    start: time,
    end: time,
    factor: float,
    change_minutes: int,
    at_minutes: int,
) -> None:
    """Compare with a minute-by-minute scan over the next three days."""
    change = utc("2025-03-01T00:00:00") + change_minutes * MINUTE
    prices = f"""
[[prices]]
model = "reasoner"
since = 2025-01-01
output = 1.0
windows = [{{ start = "{start:%H:%M}", end = "{end:%H:%M}", factor = {factor} }}]

[[prices]]
model = "reasoner"
since = {change:%Y-%m-%dT%H:%M:%SZ}
output = 1.0
"""
    job = make_job(tmp_path_factory.mktemp("property"), prices)
    at = utc("2025-03-01T00:00:00") + at_minutes * MINUTE
    expected = None
    for step in range(4 * 24 * 60):
        moment = at + step * MINUTE
        entry = find_price(job.prices, "reasoner", moment)
        assert entry is not None
        if window_factor(entry, moment) < 1:
            expected = step * 60.0
            break
    assert offpeak_wait_seconds(job, "reasoner", at) == expected
