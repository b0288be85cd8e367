"""The response log: WAL appends, compaction into Parquet, crash recovery."""

import fcntl
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.execute.responselog import ResponseLog, new_run_id, recover
from batchkit.job.model import Job
from batchkit.store.database import connect
from batchkit.store.responses import RESPONSE_SCHEMA
from tests.execute.jobfiles import prepared_job


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return prepared_job(tmp_path / "job", ["one", "two"])


def _record(number: int, run_id: str = "run-a", **fields: object) -> dict:
    now = datetime(2026, 12, 4, 12, 0, number % 60, tzinfo=UTC)
    return {
        "attempt_id": f"{run_id}-{number:07d}",
        "custom_id": f"doc:{number:04d}",
        "request_hash": "h",
        "stage": "doc",
        "attempt": 1,
        "run_id": run_id,
        "mode": "stream",
        "status": "ok",
        "started_at": now,
        "finished_at": now,
        **fields,
    }


def _attempt_count(job: Job) -> int:
    with connect(job) as connection:
        row = connection.execute("SELECT count(*) FROM attempts").fetchone()
    assert row is not None
    return int(row[0])


def test_new_run_id_sorts_by_time() -> None:
    first = new_run_id()
    second = new_run_id()
    assert first[:16] <= second[:16]
    assert first != second


def test_append_is_in_the_wal_before_close(job: Job) -> None:
    log = ResponseLog(job, "run-a")
    log.append(_record(1))
    # Read the file as another process would after a kill -9.
    lines = log.wal_path.read_bytes().splitlines()
    assert len(lines) == 1
    assert orjson.loads(lines[0])["custom_id"] == "doc:0001"
    log.close()


def test_close_compacts_and_removes_wal(job: Job) -> None:
    with ResponseLog(job, "run-a") as log:
        for number in range(3):
            log.append(_record(number))
        wal = log.wal_path
    assert not wal.exists()
    assert _attempt_count(job) == 3


def test_compacts_every_compact_rows(job: Job) -> None:
    with ResponseLog(job, "run-a", compact_rows=2) as log:
        for number in range(5):
            log.append(_record(number))
        parts_before_close = sorted(job.responses_dir.glob("part-run-a-*.parquet"))
    assert len(parts_before_close) == 2
    assert len(sorted(job.responses_dir.glob("part-run-a-*.parquet"))) == 3
    assert _attempt_count(job) == 5


def test_unknown_column_is_rejected(job: Job) -> None:
    with ResponseLog(job, "run-a") as log, pytest.raises(ValueError, match="colour"):
        log.append({"attempt_id": "x", "colour": "red"})


def test_parts_share_one_schema_when_columns_are_null(job: Job) -> None:
    with ResponseLog(job, "run-a", compact_rows=1) as log:
        log.append(_record(1))  # content, error columns and tokens all null
        log.append(
            _record(
                2,
                status="failed",
                error_type="server",
                error_message="HTTP 500",
                http_status=500,
                cost_usd=0.0,
            )
        )
    parts = sorted(job.responses_dir.glob("part-run-a-*.parquet"))
    assert len(parts) == 2
    for part in parts:
        assert pq.read_schema(part).remove_metadata() == RESPONSE_SCHEMA


def test_recover_compacts_wal_with_torn_last_line(job: Job) -> None:
    job.wal_dir.mkdir(parents=True, exist_ok=True)
    wal = job.wal_dir / "run-crashed.jsonl"
    lines = [orjson.dumps(_record(n, "run-crashed")) for n in range(3)]
    torn = orjson.dumps(_record(3, "run-crashed"))[:40]
    wal.write_bytes(b"\n".join(lines) + b"\n" + torn)
    assert recover(job) == 3
    assert not wal.exists()
    assert _attempt_count(job) == 3


def test_recover_skips_rows_already_in_parts(job: Job) -> None:
    # A crash after writing a part and before emptying the WAL.
    log = ResponseLog(job, "run-b")
    for number in range(4):
        log.append(_record(number, "run-b"))
    wal_copy = log.wal_path.read_bytes()
    log.close()
    job.wal_dir.mkdir(parents=True, exist_ok=True)
    (job.wal_dir / "run-b.jsonl").write_bytes(
        wal_copy + orjson.dumps(_record(9, "run-b")) + b"\n"
    )
    assert recover(job) == 1
    assert _attempt_count(job) == 5


def test_recover_leaves_a_live_wal_alone(job: Job) -> None:
    job.wal_dir.mkdir(parents=True, exist_ok=True)
    wal = job.wal_dir / "run-live.jsonl"
    wal.write_bytes(orjson.dumps(_record(1, "run-live")) + b"\n")
    with wal.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert recover(job) == 0
        assert wal.exists()


def test_recover_sets_aside_corrupt_part(
    job: Job, caplog: pytest.LogCaptureFixture
) -> None:
    with ResponseLog(job, "run-a") as log:
        log.append(_record(1))
    bad = job.responses_dir / "part-run-x-000001.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    recover(job)
    assert not bad.exists()
    assert bad.with_name(bad.name + ".corrupt").exists()
    assert "part-run-x-000001.parquet" in caplog.text
    assert _attempt_count(job) == 1


def test_attempts_readable_with_duckdb_directly(job: Job) -> None:
    with ResponseLog(job, "run-a") as log:
        log.append(_record(1, content="# 标题\n🙂"))
    glob = str(job.responses_dir / "*.parquet")
    rows = duckdb.sql(
        f"SELECT content FROM read_parquet('{glob}', union_by_name = true) "
        "WHERE content IS NOT NULL"
    ).fetchall()
    assert rows == [("# 标题\n🙂",)]


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
    max_size=300,
) | st.sampled_from(["中文内容", "🙂🚀", "a\u2028b", "nul\x00inside", "x" * 100_000])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=_TEXT, reasoning=st.none() | _TEXT)
def test_text_round_trips_through_wal_and_parquet(
    job: Job, content: str, reasoning: str | None
) -> None:
    run_id = new_run_id()
    with ResponseLog(job, run_id) as log:
        log.append(_record(1, run_id, content=content, reasoning_content=reasoning))
    part = sorted(job.responses_dir.glob(f"part-{run_id}-*.parquet"))[0]
    row = pq.read_table(part).to_pylist()[0]
    assert row["content"] == content
    assert row["reasoning_content"] == reasoning
