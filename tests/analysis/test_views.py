"""The analysis views against numbers computed independently in the test."""

import statistics
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from batchkit.execute import retry, select
from batchkit.job.prices import attempt_cost
from batchkit.store.analysis_views import TERMINAL_BATCH_STATUSES, UNCOUNTED_ERRORS
from batchkit.store.database import connect
from tests.analysis.runs import (
    JOB_TOML,
    AnalysisRun,
    build_analysis_run,
    prepare_run,
    utc,
    write_job,
)


def query(run: AnalysisRun, sql: str) -> list[tuple]:
    """Run `sql` through a plain duckdb connection, as the duckdb shell would."""
    connection = duckdb.connect(str(run.job.db_path), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_progress_counts_each_status(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT stage, total, pending, failed, ok, rejected, loaded, unchecked "
        "FROM progress",
    )
    assert rows == [
        ("summary", 4, 0, 1, 1, 1, 1, 0),
        ("title", 4, 2, 0, 2, 0, 0, 1),
    ]


def test_progress_statuses_add_up(analysis_run: AnalysisRun) -> None:
    for stage, total, *counts in query(
        analysis_run,
        "SELECT stage, total, pending, failed, ok, rejected, loaded FROM progress",
    ):
        assert total == sum(counts), stage


def test_request_status_per_request(analysis_run: AnalysisRun) -> None:
    statuses = dict(query(analysis_run, "SELECT custom_id, status FROM request_status"))
    assert statuses == {
        "summary:1": "loaded",
        "summary:2": "ok",
        "summary:3": "rejected",
        "summary:4": "failed",
        "title:1": "ok",
        "title:2": "ok",
        "title:3": "pending",
        "title:4": "pending",
    }


def test_failures_lists_latest_error(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT custom_id, attempts, counted_attempts, max_attempts, is_exhausted, "
        "error_type, http_status FROM failures",
    )
    assert rows == [("summary:4", 2, 2, 3, False, "server", 500)]


def test_rate_limits_not_counted(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT attempts, counted_attempts FROM request_status "
        "WHERE custom_id = 'summary:2'",
    )
    assert rows == [(2, 1)]


def test_uncounted_errors_match_execute() -> None:
    assert set(UNCOUNTED_ERRORS) == set(retry.UNCOUNTED_ERRORS)


def test_terminal_batch_statuses_match_execute() -> None:
    assert set(TERMINAL_BATCH_STATUSES) == set(select.TERMINAL_BATCH_STATES)


def test_rejects_unnests_reasons(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT custom_id, reason_name, detail, content_chars FROM rejects "
        "ORDER BY reason_name",
    )
    assert rows == [
        ("summary:3", "finish_reason", "length is not stop", 9),
        ("summary:3", "too_short", "9 characters, minimum 20", 9),
    ]


# (stage, day, attempts, cache miss, cache hit, output, reasoning, USD), with
# USD worked out by hand from the job's prices: 1.0/0.1/2.0 per million
# before 2025-06-01 12:00 with x0.25 from 16:30 to 00:30, 2.0/0.2/4.0 after,
# and x0.5 in batch mode.
EXPECTED_COSTS = [
    ("summary", "2025-03-01", 1, 100, 50, 200, 80, (100 + 5 + 400) * 0.25),
    ("summary", "2025-06-01", 2, 300, 0, 400, 0, 300 + 800),
    ("summary", "2025-06-02", 3, 10, 0, 100, 0, 20 + 400),
    ("title", "2025-06-02", 2, 27, 10, 14, 0, (14 + 36) + (40 + 2 + 20) * 0.5),
    ("title", "2025-06-03", 1, 15, 0, 6, 0, 30 + 24),
]


def test_costs_by_stage_and_day(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT stage, CAST(day AS VARCHAR), attempts, cache_miss_tokens, "
        "cache_hit_tokens, output_tokens, reasoning_tokens, cost_usd, "
        "cost_recomputed_usd, unpriced_attempts FROM costs ORDER BY stage, day",
    )
    assert len(rows) == len(EXPECTED_COSTS)
    for row, expected in zip(rows, EXPECTED_COSTS, strict=True):
        *counts, micro_usd = expected
        assert list(row[:7]) == counts
        assert row[7] == pytest.approx(micro_usd / 1e6), expected
        assert row[8] == pytest.approx(micro_usd / 1e6), expected
        assert row[9] == 0


def test_attempt_costs_window_and_change(analysis_run: AnalysisRun) -> None:
    rows = dict(
        (row[0], row[1:])
        for row in query(
            analysis_run,
            "SELECT custom_id, price_since, window_factor, mode_factor "
            "FROM attempt_costs WHERE status = 'ok' AND custom_id IN "
            "('summary:1', 'summary:2', 'title:2')",
        )
    )
    # Inside the discount window, before the change.
    assert rows["summary:1"] == (utc("2025-01-01T00:00:00"), 0.25, 1.0)
    # Started ten seconds before the price change, finished after it.
    assert rows["summary:2"] == (utc("2025-01-01T00:00:00"), 1.0, 1.0)
    assert rows["title:2"] == (utc("2025-06-01T12:00:00"), 1.0, 1.0)


def test_recomputed_cost_follows_price_fix(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    fixed = JOB_TOML.replace("output = 4.0", "output = 3.0")
    job = write_job(tmp_path, fixed)
    with connect(job):
        pass  # a read-write open rewrites the prices table from the job file
    row = query(
        run,
        "SELECT cost_usd, cost_recomputed_usd FROM costs "
        "WHERE stage = 'title' AND day = DATE '2025-06-03'",
    )[0]
    assert row[0] == pytest.approx(54e-6)
    assert row[1] == pytest.approx((30 + 6 * 3.0) / 1e6)


def test_recomputed_cost_matches_attempt_cost(tmp_path: Path) -> None:
    run = prepare_run(write_job(tmp_path))
    moment = utc("2025-05-30T00:00:00")
    expected = {}
    index = 0
    while moment < utc("2025-06-04T00:00:00"):
        mode = "batch" if index % 3 == 0 else "stream"
        row = run.add(
            "summary:1",
            1,
            moment.isoformat()[:19],
            miss=100 + index,
            hit=index % 7,
            completion=50 + index % 11,
            mode=mode,
        )
        expected[row["attempt_id"]] = attempt_cost(
            run.job.prices,
            "sim-model",
            moment,
            cache_miss_tokens=100 + index,
            cache_hit_tokens=index % 7,
            completion_tokens=50 + index % 11,
            is_batch=mode == "batch",
        )
        moment += timedelta(minutes=23, seconds=17)
        index += 1
    run.write_part("part-grid", run.rows)
    rows = dict(query(run, "SELECT attempt_id, cost_recomputed_usd FROM attempt_costs"))
    assert len(rows) == len(expected)
    for attempt_id, usd in expected.items():
        assert rows[attempt_id] == pytest.approx(usd), attempt_id


def test_latency_percentiles(analysis_run: AnalysisRun) -> None:
    ok = [row for row in analysis_run.rows if row["status"] == "ok"]
    rows = query(
        analysis_run, "SELECT stage, ok_attempts, p50_ms, p95_ms, p99_ms FROM latency"
    )
    for stage, count, p50, p95, p99 in rows:
        values = sorted(r["latency_ms"] for r in ok if r["stage"] == stage)
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        assert count == len(values)
        assert p50 == pytest.approx(statistics.median(values))
        assert p95 == pytest.approx(cuts[94])
        assert p99 == pytest.approx(cuts[98])


def test_retries_until_success(analysis_run: AnalysisRun) -> None:
    per_request = dict(
        query(analysis_run, "SELECT custom_id, attempts_until_success FROM retries")
    )
    assert per_request == {
        "summary:1": 1,
        "summary:2": 2,
        "summary:3": 1,
        "summary:4": None,
        "title:1": 1,
        "title:2": 1,
    }
    distribution = query(
        analysis_run,
        "SELECT stage, attempts_until_success, requests FROM retry_distribution",
    )
    assert distribution == [
        ("summary", 1, 2),
        ("summary", 2, 1),
        ("summary", None, 1),
        ("title", 1, 2),
    ]


def test_estimate_vs_actual_per_stage(analysis_run: AnalysisRun) -> None:
    latest = query(
        analysis_run,
        "SELECT stage, cost_usd FROM estimates "
        "QUALIFY prepared_at = max(prepared_at) OVER ()",
    )
    rows = query(
        analysis_run,
        "SELECT stage, estimated_max_cost_usd, attempts, cost_usd "
        "FROM estimate_vs_actual",
    )
    assert [(stage, estimate) for stage, estimate, _, _ in rows] == sorted(latest)
    assert rows[0][2] == 6
    assert rows[0][3] == pytest.approx((126.25 + 1100 + 420) / 1e6)
    assert rows[1][2] == 3
    assert rows[1][3] == pytest.approx((50 + 31 + 54) / 1e6)


def test_throughput_per_minute(analysis_run: AnalysisRun) -> None:
    rows = query(
        analysis_run,
        "SELECT stage, attempts, ok_attempts, failed_attempts FROM throughput "
        "WHERE minute = TIMESTAMPTZ '2025-06-02 08:00:00+00'",
    )
    assert rows == [("summary", 2, 1, 1)]


def test_views_survive_empty_log(tmp_path: Path) -> None:
    run = prepare_run(write_job(tmp_path))
    for view in ("progress", "costs", "failures", "rejects", "latency", "retries"):
        query(run, f"SELECT * FROM {view}")
    assert query(run, "SELECT sum(pending) FROM progress") == [(8,)]
