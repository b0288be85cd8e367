"""Time `execute --mode batch` on 50,000 requests: submit, then ingest.

One stage of 50,000 short requests is prepared into a temporary job. The
simulator runs as a child process and finishes batches at 20,000 lines
per second, so the provider's own time is small. Two separate calls are
timed, as a user would run them. The submit selects the requests, writes
one 50,000-line file, uploads it, and creates and records the batch. Once
the simulator has completed the batch, the ingest downloads the output,
parses it and appends 50,000 attempts to the response log. The figures are
wall time and this process's CPU time per request.
"""

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from batchkit.execute.batch.client import BatchClient
from batchkit.execute.batch.run import run_batches
from batchkit.execute.select import Selection
from batchkit.job.loader import load_job
from batchkit.prepare.run import prepare_job
from batchkit.providers.endpoint import resolve_endpoint
from batchkit.simulate import run_in_subprocess
from batchkit.store.database import connect

REQUESTS = 50_000
KEY_ENV = "BATCHKIT_BENCH_KEY"

_JOB = """
[job]
name = "batch-bench"
run_dir = "run"

[inputs.products]
path = "products.csv"

[items]
query = "SELECT id, name FROM products"
key = ["id"]

[provider]
base_url = "{base_url}"
api_key_env = "{key_env}"
model = "gpt-4o-mini"

[provider.batch]
poll_interval = 0.2

[[stages]]
name = "summary"
messages = [{{ role = "user", text = "Describe {{{{ item.name }}}} briefly." }}]
max_tokens = 60

[[prices]]
model = "gpt-4o-mini"
since = 2025-01-01
input_miss = 0.15
input_hit = 0.075
output = 0.6
"""


def _write_job(folder: Path, base_url: str) -> Path:
    lines = ["id,name"] + [f"p{n:06d},Product {n}" for n in range(REQUESTS)]
    (folder / "products.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / "job.toml"
    path.write_text(_JOB.format(base_url=base_url, key_env=KEY_ENV), encoding="utf-8")
    return path


def _timed(step: str, action: Callable[[], object]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{step:<8} {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
        f"{cpu / REQUESTS * 1000:.3f} ms CPU per request"
    )


def _wait_for_completion(base_url: str, api_key: str) -> None:
    deadline = time.monotonic() + 600
    headers = {"Authorization": f"Bearer {api_key}"}
    while time.monotonic() < deadline:
        page = httpx.get(
            f"{base_url}/batches", headers=headers, timeout=60, trust_env=False
        )
        statuses = {batch["status"] for batch in page.json()["data"]}
        if statuses == {"completed"}:
            return
        time.sleep(0.2)
    raise TimeoutError("the simulator did not complete the batch in 600 s")


def run() -> None:
    """Print the submit and ingest times of 50,000 batch requests."""
    with (
        tempfile.TemporaryDirectory(prefix="batchkit-bench-") as folder,
        run_in_subprocess(batch_lines_per_second=20_000.0) as simulator,
    ):
        os.environ[KEY_ENV] = simulator.api_key or "sk-simulator"
        job = load_job(_write_job(Path(folder), simulator.base_url))
        prepare_job(job, write_files=False)
        with BatchClient(resolve_endpoint(job)) as client:
            _timed("submit", lambda: run_batches(job, Selection(), client))
            _wait_for_completion(simulator.base_url, os.environ[KEY_ENV])
            _timed(
                "ingest", lambda: run_batches(job, Selection(), client, poll_only=True)
            )
        with connect(job, read_only=True) as connection:
            row = connection.execute(
                "SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FROM attempts"
            ).fetchone()
        print(f"attempts: {row[0] if row else 0} ok of {row[1] if row else 0}")
