"""A small real run: a prepared job plus response-log parts with known numbers.

The attempts are written as Parquet parts with RESPONSE_SCHEMA into the run's
responses folder, as execute writes them, so every view reads real files.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.job.prices import attempt_cost
from batchkit.load.validate import refresh_verdicts
from batchkit.prepare.run import prepare_job
from batchkit.store.database import connect
from batchkit.store.responses import RESPONSE_SCHEMA

JOB_TOML = """
[job]
name = "analysis"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id AS product_id, name FROM products"
key = ["product_id"]

[provider]
base_url = "http://127.0.0.1:9/v1"
model = "sim-model"
max_attempts = 3

[[stages]]
name = "summary"
messages = [{ role = "user", text = "Summarise {{ item.name }}." }]
max_tokens = 100

[stages.validate]
min_chars = 20
max_chars = 200

[[stages]]
name = "title"
messages = [{ role = "user", text = "Title for {{ item.name }}." }]
max_tokens = 20

[stages.validate]
min_chars = 5

[[prices]]
model = "sim-model"
since = 2025-01-01
input_miss = 1.0
input_hit = 0.1
output = 2.0
batch_factor = 0.5
windows = [{ start = "16:30", end = "00:30", factor = 0.25 }]

[[prices]]
model = "sim-model"
since = 2025-06-01T12:00:00Z
input_miss = 2.0
input_hit = 0.2
output = 4.0
batch_factor = 0.5
"""

PRODUCTS_CSV = "id,name\n1,Alpha\n2,Beta\n3,Gamma\n4,Delta\n"
VALID_TEXT = "A valid summary of the product, long enough."


def utc(text: str) -> datetime:
    """Parse an ISO time as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class AnalysisRun:
    """The job, the attempts written, and the hashes of the current requests."""

    job: Job
    hashes: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        custom_id: str,
        attempt: int,
        started: str,
        *,
        status: str = "ok",
        content: str | None = VALID_TEXT,
        finish_reason: str | None = "stop",
        miss: int = 0,
        hit: int = 0,
        completion: int = 0,
        reasoning: int = 0,
        latency_ms: float = 1000.0,
        mode: str = "stream",
        error_type: str | None = None,
        request_hash: str | None = None,
    ) -> dict[str, Any]:
        """Record one attempt; its cost_usd comes from `attempt_cost`."""
        stage, item_key = custom_id.split(":", 1)
        started_at = utc(started)
        is_ok = status == "ok"
        row = {name: None for name in RESPONSE_SCHEMA.names}
        row.update(
            attempt_id=f"{custom_id}#{len(self.rows)}",
            custom_id=custom_id,
            request_hash=request_hash or self.hashes[custom_id],
            stage=stage,
            item_key=item_key,
            attempt=attempt,
            run_id="run-1",
            mode=mode,
            status=status,
            error_type=error_type,
            error_message=f"{error_type}: injected" if error_type else None,
            http_status=200 if is_ok else 500,
            model="sim-model",
            content=content if is_ok else None,
            finish_reason=finish_reason if is_ok else None,
            prompt_tokens=miss + hit if is_ok else None,
            completion_tokens=completion if is_ok else None,
            reasoning_tokens=reasoning if is_ok else None,
            cache_hit_tokens=hit if is_ok else None,
            cache_miss_tokens=miss if is_ok else None,
            cost_usd=attempt_cost(
                self.job.prices,
                "sim-model",
                started_at,
                cache_miss_tokens=miss,
                cache_hit_tokens=hit,
                completion_tokens=completion,
                is_batch=mode == "batch",
            )
            if is_ok
            else None,
            started_at=started_at,
            finished_at=started_at + timedelta(milliseconds=latency_ms),
            latency_ms=latency_ms,
        )
        self.rows.append(row)
        return row

    def write_part(self, name: str, rows: list[dict[str, Any]]) -> Path:
        """Write `rows` as one Parquet part of the response log."""
        path = self.job.responses_dir / f"{name}.parquet"
        table = pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA)
        pq.write_table(table, path.with_suffix(".parquet.tmp"))
        path.with_suffix(".parquet.tmp").replace(path)
        return path


def insert_row(connection: Any, table: str, **values: Any) -> None:
    """Insert the values whose columns `table` has (the schema still grows)."""
    columns = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [table],
        ).fetchall()
    }
    names = [name for name in values if name in columns]
    connection.execute(
        f"INSERT INTO {table} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})",
        [values[name] for name in names],
    )


def write_job(directory: Path, toml: str = JOB_TOML) -> Job:
    """Write the job file and its input, and load it."""
    (directory / "products.csv").write_text(PRODUCTS_CSV, encoding="utf-8")
    (directory / "job.toml").write_text(toml, encoding="utf-8")
    return load_job(directory / "job.toml")


def prepare_run(job: Job) -> AnalysisRun:
    """Prepare the job and return an empty run with its request hashes."""
    prepare_job(job, write_files=False)
    with connect(job, read_only=True) as connection:
        rows = connection.execute(
            "SELECT custom_id, request_hash FROM requests"
        ).fetchall()
    return AnalysisRun(job=job, hashes=dict(rows))


def build_scenario(run: AnalysisRun) -> None:
    """Write the attempts of the scenario the analysis tests check.

    summary:1  ok, valid, loaded; started inside the 16:30-00:30 window (x0.25)
    summary:2  rate limited, then ok and valid, priced just before the change
    summary:3  ok but too short and cut off: rejected for two reasons
    summary:4  two failed attempts: failed
    title:1    an attempt of an older request version, then ok in batch mode
    title:2    ok, but written after the verdicts: unchecked
    title:3/4  never sent: pending
    """
    first = [
        run.add(
            "summary:1",
            1,
            "2025-03-01T23:00:00",
            miss=100,
            hit=50,
            completion=200,
            reasoning=80,
            latency_ms=1000,
        ),
        run.add(
            "summary:2",
            1,
            "2025-06-01T11:59:00",
            status="failed",
            error_type="rate_limit",
            latency_ms=100,
        ),
        run.add(
            "summary:2",
            2,
            "2025-06-01T11:59:50",
            miss=300,
            completion=400,
            latency_ms=30_000,
        ),
        run.add(
            "summary:3",
            1,
            "2025-06-02T08:00:00",
            content="too short",
            finish_reason="length",
            miss=10,
            completion=100,
            latency_ms=2000,
        ),
        run.add(
            "summary:4",
            1,
            "2025-06-02T08:00:00",
            status="failed",
            error_type="timeout",
            latency_ms=5000,
        ),
        run.add(
            "summary:4",
            2,
            "2025-06-02T08:01:00",
            status="failed",
            error_type="server",
            latency_ms=300,
        ),
        run.add(
            "title:1",
            1,
            "2025-06-02T09:00:00",
            miss=7,
            completion=9,
            request_hash="an-older-version",
            latency_ms=500,
        ),
        run.add(
            "title:1",
            1,
            "2025-06-02T10:00:00",
            miss=20,
            hit=10,
            completion=5,
            mode="batch",
            latency_ms=3000,
        ),
    ]
    run.write_part("part-000001", first)
    with connect(run.job) as connection:
        refresh_verdicts(connection, run.job)
        loaded = first[0]
        insert_row(
            connection,
            "load_ledger",
            target="parquet",
            target_key='["1"]',
            stage="summary",
            item_key="1",
            custom_id=loaded["custom_id"],
            request_hash=loaded["request_hash"],
            attempt_id=loaded["attempt_id"],
            content_hash="content",
            row_hash="row",
            loaded_at=datetime.now(UTC),
        )
    second = [
        run.add(
            "title:2",
            1,
            "2025-06-03T10:00:00",
            content="Beta, the title",
            miss=15,
            completion=6,
            latency_ms=4000,
        ),
    ]
    run.write_part("part-000002", second)


def build_analysis_run(directory: Path) -> AnalysisRun:
    """Prepare the job in `directory` and write the scenario's attempts."""
    run = prepare_run(write_job(directory))
    build_scenario(run)
    return run
