"""The views after a real execute run against the simulator on 127.0.0.1.

Faults come from the simulator's prompt markers, so every request's fate is
known in advance. The expected numbers are computed here from the Parquet
parts with pyarrow, not through the views.
"""

from collections import defaultdict

import duckdb
import pyarrow.parquet as pq
import pytest

from batchkit.execute.retry import RetryPolicy
from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, run_stream
from batchkit.job.model import Job
from batchkit.job.prices import attempt_cost
from batchkit.load.validate import refresh_verdicts
from batchkit.simulate import SimulatorHandle
from batchkit.store.database import connect
from tests.execute.jobfiles import KEY_ENV, SIMULATOR_KEY, prepared_job

PROMPTS = [
    "Write about alpha.",  # 0001 ok
    "[[sim:500 x1]] Write about beta.",  # 0002 a 500, then ok
    "[[sim:500]] Write about gamma.",  # 0003 500 on every attempt: failed
    "[[sim:length]] Write about delta.",  # 0004 cut off: rejected
    "[[sim:empty]] Write about epsilon.",  # 0005 empty content: rejected
]


@pytest.fixture(scope="module")
def executed_job(
    tmp_path_factory: pytest.TempPathFactory, simulator: SimulatorHandle
) -> Job:
    """A job of five requests sent once through execute, with verdicts.

    Shared by the module's tests, which only read it.
    """
    folder = tmp_path_factory.mktemp("executed")
    job = prepared_job(folder, PROMPTS, base_url=simulator.base_url, max_attempts=3)
    options = StreamOptions(
        retry=RetryPolicy(base=0.01, cap=0.05), handle_signals=False
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, SIMULATOR_KEY)
        run_stream(job, Selection(), options)
    with connect(job) as connection:
        refresh_verdicts(connection, job)
    return job


def read_log(job: Job) -> list[dict]:
    """Return every attempt in the response log, read with pyarrow."""
    rows = []
    for part in sorted(job.responses_dir.glob("*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def query(job: Job, sql: str) -> list[tuple]:
    """Run `sql` on a plain read-only duckdb connection."""
    connection = duckdb.connect(str(job.db_path), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_progress_after_execute(executed_job: Job) -> None:
    rows = read_log(executed_job)
    ok_ids = {row["custom_id"] for row in rows if row["status"] == "ok"}
    tried_ids = {row["custom_id"] for row in rows}
    assert tried_ids == {f"doc:{n:04d}" for n in range(1, 6)}
    assert ok_ids == {"doc:0001", "doc:0002", "doc:0004", "doc:0005"}
    statuses = dict(query(executed_job, "SELECT custom_id, status FROM request_status"))
    assert statuses == {
        "doc:0001": "ok",
        "doc:0002": "ok",
        "doc:0003": "failed",
        "doc:0004": "rejected",
        "doc:0005": "rejected",
    }
    assert query(
        executed_job,
        "SELECT total, pending, failed, ok, rejected, loaded FROM progress",
    ) == [(5, 0, 1, 2, 2, 0)]


def test_failures_after_execute(executed_job: Job) -> None:
    failed = [row for row in read_log(executed_job) if row["custom_id"] == "doc:0003"]
    rows = query(
        executed_job,
        "SELECT custom_id, attempts, is_exhausted, error_type, http_status "
        "FROM failures",
    )
    assert rows == [("doc:0003", len(failed), True, "server", 500)]
    assert len(failed) == 3


def test_rejects_after_execute(executed_job: Job) -> None:
    rows = query(
        executed_job,
        "SELECT custom_id, reason_name FROM rejects ORDER BY custom_id, reason_name",
    )
    assert ("doc:0004", "finish_reason") in rows
    assert ("doc:0005", "empty") in rows


def test_retries_after_execute(executed_job: Job) -> None:
    until = dict(
        query(executed_job, "SELECT custom_id, attempts_until_success FROM retries")
    )
    assert until["doc:0001"] == 1
    assert until["doc:0002"] == 2
    assert until["doc:0003"] is None


def test_costs_after_execute(executed_job: Job) -> None:
    rows = read_log(executed_job)
    stored = sum(row["cost_usd"] or 0.0 for row in rows)
    recomputed = sum(
        attempt_cost(
            executed_job.prices,
            "deepseek-chat",
            row["started_at"],
            cache_miss_tokens=row["cache_miss_tokens"] or 0,
            cache_hit_tokens=row["cache_hit_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
        )
        or 0.0
        for row in rows
    )
    tokens = defaultdict(int)
    for row in rows:
        tokens["miss"] += row["cache_miss_tokens"] or 0
        tokens["output"] += row["completion_tokens"] or 0
    view = query(
        executed_job,
        "SELECT sum(attempts), sum(cache_miss_tokens), sum(output_tokens), "
        "sum(cost_usd), sum(cost_recomputed_usd) FROM costs",
    )[0]
    assert stored > 0
    assert view[0] == len(rows)
    assert view[1] == tokens["miss"]
    assert view[2] == tokens["output"]
    assert view[3] == pytest.approx(stored)
    assert view[4] == pytest.approx(recomputed)
    assert recomputed == pytest.approx(stored)
