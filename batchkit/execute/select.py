"""Which requests a run sends: selection, the pending count and chunked reading.

A request is pending when its current version has no ok attempt, fewer
counted attempts than its stage's `max_attempts`, and is not part of a live
provider batch. Rate-limit responses (429) and attempts cancelled by a second
Ctrl-C do not count against the limit, because the provider did no work for
them (the stream runner counts the same way).

`iter_pending` first copies the pending rows into a Parquet snapshot with one
short DuckDB connection, then reads it a chunk at a time. The database is not
held open while requests are in flight, and memory stays flat however many
rows are pending. The rows come in no set order unless `--limit` is given,
because sorting 1,000,000 pending 1,000-byte requests with their lines by
custom_id ran out of memory under a 256 MB or 512 MB DuckDB limit; without the
sort, selecting them peaks at about 360 MB (benchmarks/execute.py, 2 cores).
`ORDER BY ... LIMIT N` keeps only the first N rows.
"""

import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from batchkit.execute.errors import SelectionError
from batchkit.job.model import Job
from batchkit.job.prices import attempt_cost
from batchkit.load.validate import refresh_verdicts
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

# Provider batch states after which the batch's requests are free again.
TERMINAL_BATCH_STATES = ("completed", "failed", "expired", "cancelled")
SNAPSHOT_ROW_GROUP = 10_000
# DuckDB spills to disk past this limit. Without a sort, a million pending
# 1,000-byte requests peaked at about 360 MB in all. A --limit of that size
# sorts them, and at 512 MB that sort sometimes failed.
SNAPSHOT_MEMORY_LIMIT = "1GB"


@dataclass
class Selection:
    """The filters of one execute run, as given on the command line."""

    stages: list[str] | None = None
    where: str | None = None  # SQL over the columns of the `requests` view
    limit: int | None = None
    only_failed: bool = False


@dataclass(frozen=True)
class PendingRequest:
    """One request to send, with the attempts its current version already had."""

    custom_id: str
    request_hash: str
    stage: str
    item_key: str
    model: str
    line: str  # the full OpenAI batch line: custom_id, method, url, body
    prompt_tokens_est: int
    max_tokens: int
    attempts: int  # attempts that count against the stage's max_attempts
    logged_attempts: int = 0  # every attempt in the log, 429s included


_COLUMNS = (
    "custom_id, request_hash, stage, item_key, model, line, "
    "prompt_tokens_est, max_tokens, attempts, logged_attempts"
)


def _stage_filter(job: Job, selection: Selection) -> str:
    if not selection.stages:
        return "TRUE"
    for name in selection.stages:
        if name not in job.stage_names:
            raise SelectionError(
                f"--stage {name!r}: no stage of that name in {job.path}; stages "
                f"are {', '.join(job.stage_names)}"
            )
    quoted = ", ".join("'" + name.replace("'", "''") + "'" for name in selection.stages)
    return f"r.stage IN ({quoted})"


def pending_sql(job: Job, selection: Selection) -> str:
    """Return the SELECT of the pending requests (by custom_id with a limit)."""
    where = f"({selection.where})" if selection.where else "TRUE"
    chosen = "failed_or_rejected" if selection.only_failed else "regular"
    limit = f"LIMIT {int(selection.limit)}" if selection.limit else ""
    order = "ORDER BY custom_id" if selection.limit else ""
    return f"""
    WITH counts AS (
        SELECT custom_id, request_hash,
               count(*) AS logged_attempts,
               count(*) FILTER (
                   WHERE coalesce(error_type, '') NOT IN ('rate_limit', 'cancelled')
               ) AS attempts,
               bool_or(status = 'ok') AS has_ok,
               arg_max(status, (finished_at, attempt_id)) AS latest_status
        FROM attempts
        GROUP BY custom_id, request_hash
    ),
    live AS (
        SELECT DISTINCT br.custom_id, br.request_hash
        FROM batch_requests br
        JOIN provider_batches pb ON pb.batch_id = br.batch_id
        WHERE pb.status NOT IN {TERMINAL_BATCH_STATES}
    ),
    rejected AS (
        SELECT DISTINCT res.custom_id
        FROM results res
        JOIN stages s ON s.stage = res.stage
        JOIN verdicts v
          ON v.attempt_id = res.attempt_id AND v.rules_hash = s.rules_hash
        WHERE NOT v.is_valid
    ),
    candidates AS (
        SELECT r.custom_id, r.request_hash, r.stage, r.item_key, r.model, r.line,
               r.prompt_tokens_est, r.max_tokens,
               coalesce(c.attempts, 0) AS attempts,
               coalesce(c.logged_attempts, 0) AS logged_attempts,
               coalesce(c.has_ok, false) AS has_ok,
               c.latest_status,
               s.max_attempts
        FROM requests r
        JOIN stages s ON s.stage = r.stage
        LEFT JOIN counts c
          ON c.custom_id = r.custom_id AND c.request_hash = r.request_hash
        WHERE {_stage_filter(job, selection)} AND {where}
          AND NOT EXISTS (
              SELECT 1 FROM live
              WHERE live.custom_id = r.custom_id
                AND live.request_hash = r.request_hash
          )
    ),
    regular AS (
        SELECT * FROM candidates WHERE NOT has_ok AND attempts < max_attempts
    ),
    failed_or_rejected AS (
        SELECT * FROM candidates
        WHERE (NOT has_ok AND latest_status = 'failed')
           OR custom_id IN (SELECT custom_id FROM rejected)
    )
    SELECT {_COLUMNS} FROM {chosen}
    {order}
    {limit}
    """


def _run_checked(
    connection: duckdb.DuckDBPyConnection, sql: str, selection: Selection
) -> duckdb.DuckDBPyConnection:
    try:
        return connection.execute(sql)
    except duckdb.Error as error:
        if selection.where:
            first_line = str(error).splitlines()[0]
            raise SelectionError(
                f"--where {selection.where!r}: not a valid SQL condition over the "
                f"requests view ({first_line}); its columns are custom_id, "
                "request_hash, stage, item_key, model, line, line_bytes, "
                "prompt_tokens_est, max_tokens, source_attempt_id, created_at"
            ) from error
        raise


def count_pending(
    connection: duckdb.DuckDBPyConnection, job: Job, selection: Selection
) -> tuple[int, float | None]:
    """Return how many requests `selection` would send and their maximum cost in USD.

    The cost assumes no cache hits and every response at max_tokens, at
    today's price; it is None when a model of the selection has no price.
    """
    if selection.only_failed:
        refresh_verdicts(connection, job)
    sql = f"""
        SELECT model, count(*), sum(prompt_tokens_est), sum(max_tokens)
        FROM ({pending_sql(job, selection)}) GROUP BY model
    """
    rows = _run_checked(connection, sql, selection).fetchall()
    now = datetime.now(UTC)
    count = 0
    total: float | None = 0.0
    for model, requests, prompt_tokens, max_tokens in rows:
        count += requests
        cost = attempt_cost(
            job.prices,
            model,
            now,
            cache_miss_tokens=int(prompt_tokens),
            cache_hit_tokens=0,
            completion_tokens=int(max_tokens),
        )
        total = None if cost is None or total is None else total + cost
    return count, total


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_snapshot(job: Job, selection: Selection, path: Path) -> int:
    """Copy the pending rows of `selection` into a Parquet file; return the count."""
    with connect(job) as connection:
        connection.execute(f"SET memory_limit = '{SNAPSHOT_MEMORY_LIMIT}'")
        if selection.only_failed:
            refresh_verdicts(connection, job)
        sql = (
            f"COPY ({pending_sql(job, selection)}) TO {_sql_string(str(path))} "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {SNAPSHOT_ROW_GROUP})"
        )
        try:
            _run_checked(connection, sql, selection)
        except duckdb.OutOfMemoryException as error:
            raise SelectionError(
                f"the selection of pending requests ran out of memory "
                f"({SNAPSHOT_MEMORY_LIMIT} for DuckDB): {error}; select fewer "
                "at a time with --stage, --where or a smaller --limit"
            ) from error
    return pq.ParquetFile(path).metadata.num_rows


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user has that id
    return True


def remove_stale_snapshots(folder: Path) -> None:
    """Delete the snapshots of processes that ended without removing them (kill -9)."""
    for path in folder.glob("pending-*.parquet"):
        owner = path.name.split("-")[1]
        if owner.isdigit() and not _is_running(int(owner)):
            path.unlink(missing_ok=True)


def iter_pending(
    job: Job, selection: Selection, chunk_size: int = 1000
) -> Iterator[list[PendingRequest]]:
    """Yield the pending requests of `selection` in chunks of at most `chunk_size`.

    The rows are fixed when the first chunk is read, so requests another
    process finishes meanwhile are still yielded.
    """
    folder = job.run_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_snapshots(folder)
    path = folder / f"pending-{os.getpid()}-{secrets.token_hex(4)}.parquet"
    try:
        write_snapshot(job, selection, path)
        snapshot = pq.ParquetFile(path)
        for batch in snapshot.iter_batches(batch_size=chunk_size):
            yield [PendingRequest(**row) for row in batch.to_pylist()]
    finally:
        path.unlink(missing_ok=True)
