"""A small two-stage job, prepared for real, with results written as Parquet parts.

Results are written straight into the run's response log with RESPONSE_SCHEMA,
which is the contract between execute and load, so these tests need no
provider.
"""

import csv
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.prepare.run import prepare_job
from batchkit.store.database import connect
from batchkit.store.responses import RESPONSE_SCHEMA

DB_URL_ENV = "BATCHKIT_TEST_DB_URL"
REST_URL_ENV = "BATCHKIT_TEST_REST_URL"
REST_KEY_ENV = "BATCHKIT_TEST_REST_KEY"

JOB_TOML = """
[job]
name = "loadtest"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id AS product_id, name AS product_name FROM products"
key = ["product_id"]

[provider]
base_url = "http://127.0.0.1:9/v1"
api_key_env = "BATCHKIT_TEST_API_KEY"
model = "test-model"

[[stages]]
name = "doc_en"
messages = [{{ role = "user", text = "Write about {{{{ item.product_name }}}}" }}]

[stages.validate]
min_chars = 10

[[stages]]
name = "doc_zh"
depends_on = "doc_en"
messages = [{{ role = "user", text = "Translate {{{{ source.content }}}}" }}]

[stages.validate]
language = "zh"

[load]
{target}
database_url_env = "{db_env}"
supabase_url_env = "{rest_url_env}"
supabase_key_env = "{rest_key_env}"
table = "docs"
layout = "{layout}"
key = ["product_id"]
item_columns = ["product_name"]
chunk_rows = {chunk_rows}

[load.columns]
doc_en = "content_en"
doc_zh = "content_zh"
"""

EN_TEXT = "A long enough English document about product {key}."
ZH_TEXT = "关于产品{key}的中文文档，内容足够长。"


def write_job(
    folder: Path,
    products: int,
    *,
    layout: str = "long",
    target: str | None = "postgres",
    chunk_rows: int = 500,
) -> Job:
    """Write products.csv and job.toml into `folder`, and return the loaded job."""
    with (folder / "products.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "name"])
        for number in range(1, products + 1):
            writer.writerow([number, f"Product {number}"])
    text = JOB_TOML.format(
        target=f'target = "{target}"' if target else "",
        db_env=DB_URL_ENV,
        rest_url_env=REST_URL_ENV,
        rest_key_env=REST_KEY_ENV,
        layout=layout,
        chunk_rows=chunk_rows,
    )
    (folder / "job.toml").write_text(text, encoding="utf-8")
    return load_job(folder / "job.toml")


def with_load(job: Job, **changes: Any) -> Job:
    """Return `job` with its load section changed."""
    return replace(job, load=replace(job.load, **changes))


def add_results(
    job: Job,
    stage: str,
    contents: dict[str, str | None],
    *,
    finish_reason: str = "stop",
    finished_at: datetime | None = None,
) -> list[str]:
    """Write one ok attempt per item key of `contents` for the stage's current
    requests into a new response part; return the attempt ids."""
    with connect(job, read_only=True) as connection:
        rows = connection.execute(
            "SELECT custom_id, request_hash, item_key FROM requests WHERE stage = ?",
            [stage],
        ).fetchall()
    current = {item_key: (custom_id, digest) for custom_id, digest, item_key in rows}
    finished = finished_at or datetime.now(UTC)
    records = []
    for item_key, content in contents.items():
        custom_id, digest = current[item_key]
        records.append(
            _attempt(
                stage, item_key, custom_id, digest, content, finish_reason, finished
            )
        )
    table = pa.Table.from_pylist(records, schema=RESPONSE_SCHEMA)
    name = f"part-test-{uuid.uuid4().hex}.parquet"
    pq.write_table(table, job.responses_dir / name)
    return [record["attempt_id"] for record in records]


def _attempt(
    stage: str,
    item_key: str,
    custom_id: str,
    digest: str,
    content: str | None,
    finish_reason: str,
    finished: datetime,
) -> dict[str, Any]:
    return {
        "attempt_id": uuid.uuid4().hex,
        "custom_id": custom_id,
        "request_hash": digest,
        "stage": stage,
        "item_key": item_key,
        "attempt": 1,
        "run_id": "test",
        "mode": "stream",
        "status": "ok",
        "http_status": 200,
        "model": "test-model",
        "content": content,
        "finish_reason": finish_reason,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "reasoning_tokens": 10,
        "cache_hit_tokens": 0,
        "cache_miss_tokens": 100,
        "cost_usd": 0.001,
        "started_at": finished - timedelta(seconds=2),
        "finished_at": finished,
        "latency_ms": 2000.0,
    }


def english(keys: range | list[int]) -> dict[str, str | None]:
    """Return valid doc_en contents for item keys `keys`."""
    return {str(key): EN_TEXT.format(key=key) for key in keys}


def chinese(keys: range | list[int]) -> dict[str, str | None]:
    """Return valid doc_zh contents for item keys `keys`."""
    return {str(key): ZH_TEXT.format(key=key) for key in keys}


@pytest.fixture
def make_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Job]:
    """Return a builder of prepared jobs in tmp_path with doc_en (and doc_zh) results.

    `make_job(products, zh=True, url=postgres_url, ...)` prepares the job,
    writes valid doc_en results for every product, prepares again, and writes
    doc_zh results unless zh is False.
    """
    monkeypatch.chdir(tmp_path)

    def build(
        products: int = 3,
        *,
        zh: bool = True,
        url: str | None = None,
        **options: Any,
    ) -> Job:
        if url is not None:
            monkeypatch.setenv(DB_URL_ENV, url)
        job = write_job(tmp_path, products, **options)
        prepare_job(job, write_files=False)
        add_results(job, "doc_en", english(range(1, products + 1)))
        if zh:
            prepare_job(job, write_files=False)
            add_results(job, "doc_zh", chinese(range(1, products + 1)))
        return job

    return build
