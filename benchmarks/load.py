"""Time `load` of 62,000 results of about 3 KB into a local PostgreSQL 15.

The job has 15,500 items and four independent stages, and the long layout
makes one target row per result. It prints six figures: validation of the
results, the first load through COPY (target under 60 s), an unchanged
rerun (must send nothing), a `--full` rerun (sends everything, must write
nothing), and the first load in the wide layout (15,500 rows of four
stages). The sixth is the same first load through the REST path against the
PostgREST stand-in of tests/fixtures/postgrest.py.
"""

import csv
import os
import random
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.load.run import LoadSummary, load_results, target_schema
from batchkit.load.validate import refresh_verdicts
from batchkit.localpg import local_postgres
from batchkit.prepare.run import prepare_job
from batchkit.store.database import connect
from batchkit.store.responses import RESPONSE_SCHEMA
from tests.fixtures.postgrest import run_postgrest

ITEMS = 15_500
STAGES = 4
CONTENT_CHARS = 3_000
TARGET_SECONDS = 60.0
PART_ROWS = 10_000

_WORDS = [
    *("model", "agent", "workflow", "latency", "dataset", "pipeline", "embedding"),
    *("retrieval", "customer", "pricing", "dashboard", "security", "compliance"),
    *("analytics", "integration", "platform", "team", "roadmap", "feedback"),
    *("inference", "quality", "evaluation", "prompt", "deployment", "schema"),
]

_JOB = """
[job]
name = "loadbench"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id AS product_id, name AS product_name FROM products"
key = ["product_id"]

[provider]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "BATCHKIT_BENCH_API_KEY"
model = "bench-model"
{stages}
[load]
target = "{target}"
database_url_env = "BATCHKIT_BENCH_DB_URL"
supabase_url_env = "BATCHKIT_BENCH_REST_URL"
supabase_key_env = "BATCHKIT_BENCH_REST_KEY"
table = "docs"
layout = "long"
item_columns = ["product_name"]
"""

_STAGE = """
[[stages]]
name = "doc_{index}"
messages = [
    {{ role = "user", text = "Write document {index} on {{{{ item.product_name }}}}" }},
]

[stages.validate]
language = "en"
min_chars = 2000
min_headings = 2
"""


def _write_job(directory: Path, target: str) -> Job:
    with (directory / "products.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name"])
        for number in range(1, ITEMS + 1):
            writer.writerow([number, f"Product {number}"])
    stages = "".join(_STAGE.format(index=index) for index in range(1, STAGES + 1))
    text = _JOB.format(stages=stages, target=target)
    (directory / "job.toml").write_text(text, encoding="utf-8")
    return load_job(directory / "job.toml")


def _paragraphs(rng: random.Random, count: int) -> list[str]:
    pool = []
    for _ in range(count):
        words = []
        while sum(len(word) + 1 for word in words) < CONTENT_CHARS - 60:
            words.append(rng.choice(_WORDS))
        pool.append(" ".join(words))
    return pool


def _attempt_batches(job: Job) -> Iterator[pa.Table]:
    rng = random.Random(7)
    pool = _paragraphs(rng, 500)
    with connect(job, read_only=True) as connection:
        requests = connection.execute(
            "SELECT custom_id, request_hash, stage, item_key FROM requests"
        ).fetchall()
    finished = datetime.now(UTC)
    for start in range(0, len(requests), PART_ROWS):
        rows = []
        for index, (custom_id, digest, stage, item_key) in enumerate(
            requests[start : start + PART_ROWS], start
        ):
            content = f"# {stage} {item_key}\n\n## Overview\n\n{pool[index % 500]}"
            rows.append(_attempt(custom_id, digest, stage, item_key, content, finished))
        yield pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA)


def _attempt(
    custom_id: str,
    digest: str,
    stage: str,
    item_key: str,
    content: str,
    finished: datetime,
) -> dict[str, object]:
    return {
        "attempt_id": uuid.uuid4().hex,
        "custom_id": custom_id,
        "request_hash": digest,
        "stage": stage,
        "item_key": item_key,
        "attempt": 1,
        "run_id": "bench",
        "mode": "stream",
        "status": "ok",
        "http_status": 200,
        "model": "bench-model",
        "content": content,
        "finish_reason": "stop",
        "prompt_tokens": 500,
        "completion_tokens": 900,
        "reasoning_tokens": 200,
        "cost_usd": 0.002,
        "started_at": finished - timedelta(seconds=20),
        "finished_at": finished,
    }


def _prepare(directory: Path, target: str) -> Job:
    job = _write_job(directory, target)
    prepare_job(job, write_files=False)
    for number, table in enumerate(_attempt_batches(job)):
        pq.write_table(table, job.responses_dir / f"part-bench-{number:03}.parquet")
    return job


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_load(job: Job, label: str, **options: object) -> LoadSummary:
    started = time.perf_counter()
    summary = load_results(job, **options)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    rate = summary.rows_sent / seconds if seconds else 0.0
    print(
        f"{label:<28} {seconds:6.1f} s  rows sent {summary.rows_sent:>6,}  "
        f"inserted {summary.rows_inserted}  updated {summary.rows_updated}  "
        f"{rate:,.0f} rows/s  peak RSS {_peak_rss_mb():,.0f} MB",
        flush=True,
    )
    return summary


def _create_database(url: str, name: str) -> str:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.rsplit("/", 1)[0] + "/" + name


def run() -> None:
    """Print load timings for 62,000 results against the 60 s target."""
    with tempfile.TemporaryDirectory() as folder, local_postgres() as server:
        os.environ["BATCHKIT_BENCH_DB_URL"] = server.url
        started = time.perf_counter()
        job = _prepare(Path(folder), "postgres")
        print(f"setup (prepare + write results) {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        with connect(job) as connection:
            judged = refresh_verdicts(connection, job)
        print(f"{'validate':<28} {time.perf_counter() - started:6.1f} s  {judged:,}")

        first = _timed_load(job, "load via COPY", create_table=True)
        verdict = "meets" if first.seconds < TARGET_SECONDS else "MISSES"
        print(f"  {verdict} the target of {TARGET_SECONDS:.0f} s")
        rerun = _timed_load(job, "rerun, nothing changed")
        full = _timed_load(job, "rerun --full", full=True)
        print(
            f"  rerun sent {rerun.rows_sent} rows; --full wrote "
            f"{(full.rows_inserted or 0) + (full.rows_updated or 0)} rows"
        )

        wide = replace(job, load=replace(job.load, layout="wide", table="docs_wide"))
        _timed_load(wide, "load via COPY, wide layout", create_table=True)

        rest_url = _create_database(server.url, "bench_rest")
        with run_postgrest(rest_url) as postgrest:
            os.environ["BATCHKIT_BENCH_REST_URL"] = postgrest.url
            os.environ["BATCHKIT_BENCH_REST_KEY"] = postgrest.key
            with psycopg.connect(rest_url, autocommit=True) as connection:
                connection.execute(target_schema(job))  # type: ignore[arg-type]
            _timed_load(job, "load via REST (stand-in)", target="rest")
