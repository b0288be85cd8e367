"""Run stream jobs against the simulator and read back what both sides logged."""

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from batchkit.execute.retry import RetryPolicy
from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, StreamSummary, run_stream
from batchkit.job.model import Job
from batchkit.simulate import SimulatorHandle


def fast_retries() -> RetryPolicy:
    """Return a policy whose backoff waits are milliseconds, for fault tests."""
    return RetryPolicy(base=0.01, cap=0.05)


def run(job: Job, selection: Selection | None = None, **options: Any) -> StreamSummary:
    """Run stream mode in this thread without signal handlers, fast retries."""
    options.setdefault("retry", fast_retries())
    options.setdefault("handle_signals", False)
    return run_stream(job, selection or Selection(), StreamOptions(**options))


def attempts(job: Job) -> list[dict[str, Any]]:
    """Return every row of the response log's Parquet parts, oldest first."""
    rows: list[dict[str, Any]] = []
    for part in sorted(job.responses_dir.glob("*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return sorted(rows, key=lambda row: (row["started_at"], row["attempt_id"]))


def attempts_of(job: Job, custom_id: str) -> list[dict[str, Any]]:
    """Return the response log rows of one request, oldest first."""
    return [row for row in attempts(job) if row["custom_id"] == custom_id]


def ok_counts(job: Job) -> Counter[str]:
    """Return the number of ok rows per custom_id."""
    return Counter(row["custom_id"] for row in attempts(job) if row["status"] == "ok")


def served(simulator: SimulatorHandle) -> Counter[str]:
    """Return how many chat requests the simulator received per custom_id."""
    return Counter(
        entry["custom_id"]
        for entry in simulator.log()
        if entry["source"] == "http" and entry["custom_id"] is not None
    )


def files_containing(folder: Path, secret: bytes) -> list[Path]:
    """Return the files under `folder` whose bytes contain `secret`."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and secret in path.read_bytes()
    ]
