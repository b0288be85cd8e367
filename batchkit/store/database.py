"""Short-lived connections to the job database.

No command keeps the database open while requests are in flight, so that
`status` and `sql` can open it at any time. DuckDB lets one process write at a
time, so opening retries for a while when another command holds the lock.
"""

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import duckdb
import orjson

from batchkit.job.model import Job
from batchkit.store.errors import StoreError
from batchkit.store.responses import ensure_schema_part
from batchkit.store.schema import SCHEMA_VERSION, TABLES
from batchkit.store.views import create_views

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30.0


def _open(path: str, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise StoreError(
                    f"{path}: cannot open the job database ({error}); another "
                    "batchkit command may be writing to it, so retry when it ends"
                ) from error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(
    job: Job, *, read_only: bool = False, wait: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the job database, creating or upgrading it unless `read_only`."""
    if read_only and not job.db_path.exists():
        raise StoreError(
            f"{job.db_path}: no job database yet; run `batchkit prepare -j {job.path}`"
        )
    job.run_dir.mkdir(parents=True, exist_ok=True)
    connection = _open(str(job.db_path), read_only, wait)
    try:
        # DuckDB draws its own progress bar on stdout for long queries, and
        # would download an extension that a query needs; batchkit runs offline.
        connection.execute("SET enable_progress_bar = false")
        connection.execute("SET autoinstall_known_extensions = false")
        if not read_only:
            initialise(connection, job)
        yield connection
    finally:
        connection.close()


def initialise(connection: duckdb.DuckDBPyConnection, job: Job) -> None:
    """Create the tables, record the job's stages and prices, and create the views."""
    for statement in TABLES:
        connection.execute(statement)
    row = connection.execute(
        "SELECT value FROM batchkit_meta WHERE key = 'schema_version'"
    ).fetchone()
    if row is None:
        connection.execute(
            "INSERT INTO batchkit_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION]
        )
    elif row[0] != SCHEMA_VERSION:
        raise StoreError(
            f"{job.db_path}: schema version {row[0]} is not {SCHEMA_VERSION}; use the "
            "batchkit version that created it, or move the run directory aside"
        )
    ensure_schema_part(job.responses_dir)
    sync_stages(connection, job)
    sync_prices(connection, job)
    create_views(connection, job)


def rules_hash(job: Job, stage_name: str) -> str:
    """Return a short hash of a stage's validation rules and dependency."""
    stage = job.stage(stage_name)
    payload = {"rules": asdict(stage.validation), "depends_on": stage.depends_on}
    return hashlib.sha256(orjson.dumps(payload, default=str)).hexdigest()[:16]


def sync_stages(connection: duckdb.DuckDBPyConnection, job: Job) -> None:
    """Rewrite the `stages` table from the job file."""
    rows = [
        (
            stage.name,
            position,
            stage.depends_on,
            stage.model,
            stage.max_tokens,
            stage.max_attempts,
            rules_hash(job, stage.name),
            orjson.dumps(asdict(stage.validation)).decode(),
        )
        for position, stage in enumerate(job.stages)
    ]
    connection.execute("BEGIN")
    connection.execute("DELETE FROM stages")
    connection.executemany("INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")


def sync_prices(connection: duckdb.DuckDBPyConnection, job: Job) -> None:
    """Rewrite the `prices` table from the job file."""
    rows = [
        (
            entry.model,
            entry.since,
            entry.input_miss,
            entry.input_hit,
            entry.output,
            entry.batch_factor,
            orjson.dumps(
                [
                    {
                        "start": window.start.isoformat(),
                        "end": window.end.isoformat(),
                        "factor": window.factor,
                    }
                    for window in entry.windows
                ]
            ).decode(),
        )
        for entry in job.prices
    ]
    connection.execute("BEGIN")
    connection.execute("DELETE FROM prices")
    if rows:
        connection.executemany("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
