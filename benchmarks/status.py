"""Time `batchkit status` on 62,000 synthetic requests and their attempts.

The run has 15,500 items × 4 stages = 62,000 current requests: 56,000 with
one ok attempt of 2,000 characters, 3,000 with one failed attempt and 3,000
pending. One verdict in ten is a reject and half the valid results are in the
load ledger. That is the size of the productmind job, and the target is a
status under one second.
"""

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from batchkit.analysis.report import write_report
from batchkit.analysis.status import read_status
from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.store.database import connect

ITEMS = 15_500
STAGES = ("doc_en", "doc_zh", "mdc_en", "mdc_zh")
ANSWERED = 56_000
FAILED = 3_000
TARGET_SECONDS = 1.0
REPEATS = 5

_JOB = """
[job]
name = "status-bench"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id FROM products"
key = ["id"]

[provider]
model = "deepseek-reasoner"

{stages}

[[prices]]
model = "deepseek-reasoner"
since = 2025-01-20
input_miss = 0.55
input_hit = 0.14
output = 2.19
windows = [{{ start = "16:30", end = "00:30", factor = 0.25 }}]
"""


def write_job(directory: Path) -> Job:
    """Write the job file and a one-row input, and load the job."""
    (directory / "products.csv").write_text("id\n1\n", encoding="utf-8")
    stages = "\n".join(
        f'[[stages]]\nname = "{name}"\n'
        'messages = [{ role = "user", text = "x" }]\nmax_tokens = 4000\n'
        f"[stages.validate]\nmin_chars = 100\n"
        for name in STAGES
    )
    path = directory / "job.toml"
    path.write_text(_JOB.format(stages=stages), encoding="utf-8")
    return load_job(path)


def fill_run(job: Job) -> None:
    """Insert the requests, write the attempts as Parquet, add verdicts and ledger."""
    stage_list = ", ".join(f"'{name}'" for name in STAGES)
    part = job.responses_dir / "part-bench.parquet"
    with connect(job) as connection:
        connection.execute(
            f"""
            INSERT INTO request_versions
            SELECT s.stage || ':' || i AS custom_id, md5(s.stage || i), s.stage,
                   CAST(i AS VARCHAR), 'deepseek-reasoner', '{{}}', 2000, 500, 4000,
                   NULL, now(), NULL
            FROM range({ITEMS}) r(i), unnest([{stage_list}]) s(stage)
            """
        )
        connection.execute(_attempts_copy(part))
        connection.execute(
            """
            INSERT INTO verdicts
            SELECT a.attempt_id, s.rules_hash, a.custom_id, a.request_hash, a.stage,
                   a.item_key, hash(a.attempt_id) % 10 <> 0,
                   CASE WHEN hash(a.attempt_id) % 10 = 0
                        THEN ['too_short: 90 characters, minimum 100']
                        ELSE [] END,
                   now()
            FROM results a JOIN stages s USING (stage)
            """
        )
        connection.execute(
            """
            INSERT INTO load_ledger BY NAME
            SELECT 'postgres' AS target, item_key AS target_key, stage, item_key,
                   custom_id, request_hash, attempt_id, md5(content) AS content_hash,
                   md5(content) AS row_hash, now() AS loaded_at
            FROM valid_results WHERE hash(attempt_id) % 2 = 0
            """
        )
        connection.execute(
            "INSERT INTO estimates SELECT now(), stage, count(*), "
            "sum(prompt_tokens_est), sum(max_tokens), 1.0 * count(*) "
            "FROM requests GROUP BY stage"
        )


def _attempts_copy(part: Path) -> str:
    # Requests in order; the first ANSWERED get an ok attempt, the next FAILED
    # a failed one, the rest stay pending. Attempts span the last two hours.
    return f"""
    COPY (
        SELECT custom_id || '#1' AS attempt_id, custom_id, request_hash, stage,
               item_key, CAST(1 AS INTEGER) AS attempt, 'run-1' AS run_id,
               'stream' AS mode, CAST(NULL AS VARCHAR) AS batch_id,
               CASE WHEN n < {ANSWERED} THEN 'ok' ELSE 'failed' END AS status,
               CASE WHEN n < {ANSWERED} THEN NULL ELSE 'rate_limited' END
                   AS error_type,
               CASE WHEN n < {ANSWERED} THEN NULL ELSE '429 Too Many Requests' END
                   AS error_message,
               CAST(CASE WHEN n < {ANSWERED} THEN 200 ELSE 429 END AS INTEGER)
                   AS http_status,
               'deepseek-reasoner' AS model,
               CASE WHEN n < {ANSWERED}
                    THEN '# Heading ' || n || chr(10) || repeat('word ', 400) END
                   AS content,
               CAST(NULL AS VARCHAR) AS reasoning_content,
               'stop' AS finish_reason,
               CAST(600 AS BIGINT) AS prompt_tokens,
               CAST(1500 AS BIGINT) AS completion_tokens,
               CAST(700 AS BIGINT) AS reasoning_tokens,
               CAST(100 AS BIGINT) AS cache_hit_tokens,
               CAST(500 AS BIGINT) AS cache_miss_tokens,
               0.0033 AS cost_usd,
               now() - INTERVAL 2 HOUR + n * INTERVAL 100 MILLISECOND AS started_at,
               now() - INTERVAL 2 HOUR + n * INTERVAL 100 MILLISECOND
                   + INTERVAL 20 SECOND AS finished_at,
               20000.0 AS latency_ms,
               CAST(NULL AS VARCHAR) AS raw_body
        FROM (
            SELECT *, row_number() OVER (ORDER BY custom_id) - 1 AS n FROM requests
        )
        WHERE n < {ANSWERED + FAILED}
    ) TO '{part}' (FORMAT parquet, COMPRESSION zstd)
    """


def write_wal(job: Job) -> int:
    """Write ok attempts for the pending requests as an uncompacted WAL file.

    That is what a running execute leaves between two compactions.
    """
    with connect(job, read_only=True) as connection:
        pending = connection.execute(
            "SELECT custom_id, request_hash, stage, item_key FROM request_status "
            "WHERE status = 'pending'"
        ).fetchall()
    now = datetime.now(UTC).isoformat()
    lines = [
        orjson.dumps(
            {
                "attempt_id": f"{custom_id}#wal",
                "custom_id": custom_id,
                "request_hash": request_hash,
                "stage": stage,
                "item_key": item_key,
                "attempt": 1,
                "status": "ok",
                "content": "# Heading\n" + "word " * 400,
                "finish_reason": "stop",
                "completion_tokens": 1500,
                "cost_usd": 0.0033,
                "started_at": now,
                "finished_at": now,
                "latency_ms": 20000.0,
            }
        )
        for custom_id, request_hash, stage, item_key in pending
    ]
    job.wal_dir.mkdir(parents=True, exist_ok=True)
    (job.wal_dir / "bench.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def _time_command(job: Job) -> float:
    started = time.perf_counter()
    subprocess.run(
        [Path(sys.executable).with_name("batchkit"), "status", "-j", str(job.path)],
        check=True,
        capture_output=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    return time.perf_counter() - started


def run() -> None:
    """Print the times of read_status, the `batchkit status` command and the report."""
    with tempfile.TemporaryDirectory() as folder:
        job = write_job(Path(folder))
        started = time.perf_counter()
        fill_run(job)
        print(f"built the run in {time.perf_counter() - started:.1f} s")
        timings = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            status = read_status(job)
            timings.append(time.perf_counter() - started)
        totals = status.totals
        print(
            f"requests {totals.total:,}: pending {totals.pending:,}, ok {totals.ok:,}, "
            f"failed {totals.failed:,}, rejected {totals.rejected:,}, "
            f"loaded {totals.loaded:,}"
        )
        print(
            f"read_status: first {timings[0]:.3f} s, best {min(timings):.3f} s "
            f"of {REPEATS} (target < {TARGET_SECONDS:.1f} s)"
        )
        wal_rows = write_wal(job)
        started = time.perf_counter()
        read_status(job)
        print(
            f"read_status with {wal_rows:,} attempts in the write-ahead log: "
            f"{time.perf_counter() - started:.3f} s"
        )
        command = min(_time_command(job) for _ in range(3))
        print(f"`batchkit status` process, interpreter start included: {command:.2f} s")
        started = time.perf_counter()
        path = write_report(job, Path(folder) / "report.html")
        print(
            f"write_report: {time.perf_counter() - started:.2f} s, "
            f"{path.stat().st_size / 1e6:.1f} MB"
        )
