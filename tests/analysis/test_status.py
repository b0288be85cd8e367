"""read_status: counts, spend, rate, ETA, errors and live batches."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from batchkit.analysis.errors import AnalysisError
from batchkit.analysis.status import MIN_RATE_SECONDS, read_status
from batchkit.store.database import connect
from tests.analysis.runs import (
    AnalysisRun,
    build_analysis_run,
    insert_row,
    utc,
)

NOW = utc("2025-06-02T08:03:00")


def test_stage_counts_and_totals(analysis_run: AnalysisRun) -> None:
    status = read_status(analysis_run.job, now=NOW)
    summary, title = status.stages
    assert (summary.stage, summary.total, summary.failed, summary.loaded) == (
        "summary",
        4,
        1,
        1,
    )
    assert (title.pending, title.ok, title.unchecked) == (2, 2, 1)
    assert status.totals.total == 8
    assert status.totals.pending == 2
    assert status.totals.rejected == 1


def test_spend_against_estimate(analysis_run: AnalysisRun) -> None:
    status = read_status(analysis_run.job, now=NOW)
    summary, title = status.stages
    assert summary.spend_usd == pytest.approx((126.25 + 1100 + 420) / 1e6)
    assert title.spend_usd == pytest.approx((50 + 31 + 54) / 1e6)
    assert summary.estimate_usd is not None
    assert status.totals.estimate_usd == pytest.approx(
        summary.estimate_usd + (title.estimate_usd or 0)
    )


def test_rate_and_eta(analysis_run: AnalysisRun) -> None:
    status = read_status(analysis_run.job, now=NOW, window_minutes=5)
    # Finished between 07:58 and 08:03: summary:3 and both summary:4 attempts.
    # The first of them started at 08:00, so the rate covers 3 minutes.
    assert status.recent_attempts == 3
    assert status.rate_seconds == pytest.approx(180)
    assert status.rate_per_minute == pytest.approx(1.0)
    assert status.remaining == 4  # 2 pending, 1 failed, 1 rejected
    assert status.eta_seconds == pytest.approx(4 * 60)


def test_rate_full_window_when_older(analysis_run: AnalysisRun) -> None:
    # With a 2 minute window (08:01-08:03) only summary:4's second attempt
    # counts, and it started at 08:01, the window's start.
    status = read_status(analysis_run.job, now=NOW, window_minutes=2)
    assert status.recent_attempts == 1
    assert status.rate_seconds == pytest.approx(120)
    assert status.rate_per_minute == pytest.approx(0.5)


def young_run(directory: Path) -> tuple[AnalysisRun, datetime]:
    """A run whose 30 newest attempts started one a second over 30 seconds."""
    run = build_analysis_run(directory)
    start = utc("2025-07-01T12:00:00")
    rows = [
        run.add(
            "title:3",
            n + 1,
            (start + timedelta(seconds=n)).isoformat(),
            status="failed",
            error_type="server",
            latency_ms=500,
        )
        for n in range(30)
    ]
    run.write_part("part-young", rows)
    return run, start + timedelta(seconds=30)


def test_rate_over_young_run(tmp_path: Path) -> None:
    run, now = young_run(tmp_path)
    status = read_status(run.job, now=now, window_minutes=5)
    assert status.recent_attempts == 30
    # 30 attempts in the 30 seconds since the first started, not in 5 minutes.
    assert status.rate_seconds == pytest.approx(30)
    assert status.rate_per_minute == pytest.approx(60)
    assert status.remaining == 4  # title:4 pending; title:3, summary:4 failed
    assert status.eta_seconds == pytest.approx(4)
    assert status.to_dict()["rate_seconds"] == pytest.approx(30)


def test_rate_span_has_floor(tmp_path: Path) -> None:
    run, now = young_run(tmp_path)
    # One second after the first attempt started, only that attempt finished.
    status = read_status(run.job, now=now - timedelta(seconds=29))
    assert status.recent_attempts == 1
    assert status.rate_seconds == MIN_RATE_SECONDS
    assert status.rate_per_minute == pytest.approx(60 / MIN_RATE_SECONDS)


def test_no_eta_without_recent_attempts(analysis_run: AnalysisRun) -> None:
    status = read_status(analysis_run.job, now=utc("2026-01-01T00:00:00"))
    assert status.recent_attempts == 0
    assert status.eta_seconds is None
    assert status.last_finished_at == utc("2025-06-03T10:00:04")


def test_top_error_types(analysis_run: AnalysisRun) -> None:
    status = read_status(analysis_run.job, now=NOW)
    errors = {error.error_type: error for error in status.errors}
    assert set(errors) == {"rate_limit", "server", "timeout"}
    assert errors["timeout"].attempts == 1
    assert errors["timeout"].recent_attempts == 1
    assert errors["rate_limit"].recent_attempts == 0
    assert errors["server"].last_message == "server: injected"


def test_json_shape(analysis_run: AnalysisRun) -> None:
    data = read_status(analysis_run.job, now=NOW).to_dict()
    assert data["totals"]["total"] == 8
    assert data["remaining"] == 4
    assert data["rate_per_minute"] == pytest.approx(1.0)
    assert data["rate_seconds"] == pytest.approx(180)
    assert [stage["stage"] for stage in data["stages"]] == ["summary", "title"]


def test_live_batches_only(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    now = datetime.now(UTC)
    with connect(run.job) as connection:
        for batch_id, state in (("batch_a", "in_progress"), ("batch_b", "completed")):
            insert_row(
                connection,
                "provider_batches",
                batch_id=batch_id,
                run_id="run-1",
                input_file_id="file-1",
                status=state,
                request_count=10,
                completed_count=4,
                failed_count=1,
                created_at=now,
                updated_at=now,
            )
    batches = read_status(run.job).batches
    assert [(b.batch_id, b.status, b.request_count) for b in batches] == [
        ("batch_a", "in_progress", 10)
    ]


def test_status_never_writes(analysis_run: AnalysisRun) -> None:
    before = analysis_run.job.db_path.stat().st_mtime_ns
    read_status(analysis_run.job)
    assert analysis_run.job.db_path.stat().st_mtime_ns == before
    assert not analysis_run.job.db_path.with_suffix(".duckdb.wal").exists()


HOLD_LOCK = """
import sys, time, duckdb
from pathlib import Path
connection = duckdb.connect(sys.argv[1])
Path(sys.argv[2]).write_text("locked")
time.sleep(float(sys.argv[3]))
connection.close()
"""


def test_status_waits_for_writer(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    ready = tmp_path / "locked"
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run.job.db_path), str(ready), "1.0"]
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "the writer never took the lock"
            time.sleep(0.02)
        status = read_status(run.job, lock_wait=20)
    finally:
        writer.wait(timeout=30)
    assert status.totals.total == 8


def test_missing_views_name_fix(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    connection = duckdb.connect(str(run.job.db_path))
    connection.execute("DROP VIEW progress")
    connection.close()
    with pytest.raises(AnalysisError, match="analysis views are missing") as raised:
        read_status(run.job)
    assert f"run `batchkit prepare -j {run.job.path}`" in str(raised.value)
