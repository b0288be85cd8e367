"""The provider batches of a job in its database: record, update and query.

`provider_batches` has one row per batch the job created or adopted. It is
updated on every poll, so `batchkit status` shows the provider's view.
`batch_requests` lists the custom_id and request_hash of every line.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from batchkit.execute.batch.ingest import BatchRequest
from batchkit.execute.batch.summary import LIVE_STATES
from batchkit.execute.select import TERMINAL_BATCH_STATES

logger = logging.getLogger(__name__)

# Provider batch timestamps that mark the end, by status.
FINISH_FIELDS = ("completed_at", "failed_at", "expired_at", "cancelled_at")
MAX_BACKOFF = timedelta(hours=1)

_REQUESTS_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("custom_id", pa.string()),
        ("request_hash", pa.string()),
    ]
)


@dataclass(frozen=True)
class BatchRow:
    """One row of `provider_batches`."""

    batch_id: str
    run_id: str
    status: str
    model: str | None
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    request_count: int
    completed_count: int | None
    failed_count: int | None
    created_at: datetime
    finished_at: datetime | None
    ingested_at: datetime | None
    error: str | None

    @property
    def is_live(self) -> bool:
        return self.status not in TERMINAL_BATCH_STATES


_ROW_COLUMNS = (
    "batch_id, run_id, status, model, input_file_id, output_file_id, "
    "error_file_id, request_count, completed_count, failed_count, created_at, "
    "finished_at, ingested_at, error"
)


def from_unix(value: Any) -> datetime | None:
    """Convert a provider's Unix time in seconds to a UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def finished_at(batch: dict[str, Any]) -> datetime | None:
    """Return when a provider batch reached its final status, if it has."""
    for name in FINISH_FIELDS:
        moment = from_unix(batch.get(name))
        if moment is not None:
            return moment
    return None


def batch_error(batch: dict[str, Any]) -> str | None:
    """Return the batch-level errors of a provider batch as one line, or None."""
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    if not data:
        return None
    parts = []
    for entry in data:
        if isinstance(entry, dict):
            line = f" (line {entry['line']})" if entry.get("line") else ""
            parts.append(f"{entry.get('code')}: {entry.get('message')}{line}")
    return "; ".join(parts) or None


def _counts(batch: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    counts = batch.get("request_counts")
    if not isinstance(counts, dict):
        return None, None, None
    return counts.get("total"), counts.get("completed"), counts.get("failed")


def insert_batch(
    connection: duckdb.DuckDBPyConnection,
    batch: dict[str, Any],
    *,
    run_id: str,
    model: str,
    input_path: str | None,
    enqueued_tokens: int | None,
    requests: Iterable[tuple[str, str]],
) -> int:
    """Record a new batch and the requests it contains, in one transaction.

    Returns the number of requests recorded.
    """
    table = pa.Table.from_pylist(
        [
            {"batch_id": batch["id"], "custom_id": custom_id, "request_hash": hash_}
            for custom_id, hash_ in requests
        ],
        schema=_REQUESTS_SCHEMA,
    )
    now = datetime.now(UTC)
    _, completed, failed = _counts(batch)
    connection.execute("BEGIN")
    try:
        connection.execute(
            """
            INSERT INTO provider_batches (
                batch_id, run_id, input_file_id, output_file_id, error_file_id,
                status, request_count, completed_count, failed_count, created_at,
                updated_at, error, model, endpoint, completion_window, metadata,
                input_path, enqueued_tokens, finished_at
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                batch["id"],
                run_id,
                batch.get("input_file_id"),
                batch.get("output_file_id"),
                batch.get("error_file_id"),
                batch.get("status") or "validating",
                table.num_rows,
                completed,
                failed,
                from_unix(batch.get("created_at")) or now,
                now,
                batch_error(batch),
                model,
                batch.get("endpoint"),
                batch.get("completion_window"),
                orjson.dumps(batch.get("metadata") or {}).decode(),
                input_path,
                enqueued_tokens,
                finished_at(batch),
            ],
        )
        connection.register("new_batch_requests", table)
        connection.execute(
            "INSERT INTO batch_requests SELECT * FROM new_batch_requests"
        )
        connection.unregister("new_batch_requests")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return table.num_rows


def update_batch(
    connection: duckdb.DuckDBPyConnection,
    batch: dict[str, Any],
    resubmit_after: datetime | None = None,
) -> None:
    """Store the provider's current view of a batch."""
    _, completed, failed = _counts(batch)
    connection.execute(
        """
        UPDATE provider_batches SET
            status = ?, output_file_id = ?, error_file_id = ?,
            completed_count = ?, failed_count = ?, updated_at = ?, error = ?,
            finished_at = ?, resubmit_after = coalesce(?, resubmit_after)
        WHERE batch_id = ?
        """,
        [
            batch.get("status"),
            batch.get("output_file_id"),
            batch.get("error_file_id"),
            completed,
            failed,
            datetime.now(UTC),
            batch_error(batch),
            finished_at(batch),
            resubmit_after,
            batch["id"],
        ],
    )


def _rows(connection: duckdb.DuckDBPyConnection, where: str) -> list[BatchRow]:
    sql = (
        f"SELECT {_ROW_COLUMNS} FROM provider_batches WHERE {where} "
        "ORDER BY created_at, batch_id"
    )
    return [BatchRow(*row) for row in connection.execute(sql).fetchall()]


def unfinished_batches(connection: duckdb.DuckDBPyConnection) -> list[BatchRow]:
    """Return the batches that are live or finished but not yet ingested."""
    terminal = ", ".join(f"'{state}'" for state in TERMINAL_BATCH_STATES)
    return _rows(connection, f"status NOT IN ({terminal}) OR ingested_at IS NULL")


def known_batch_ids(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Return the ids of every batch the job has recorded."""
    rows = connection.execute("SELECT batch_id FROM provider_batches").fetchall()
    return {row[0] for row in rows}


def mark_ingested(connection: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    """Record that every line of `batch_id` is in the response log."""
    connection.execute(
        "UPDATE provider_batches SET ingested_at = ? WHERE batch_id = ?",
        [datetime.now(UTC), batch_id],
    )


def load_batch_requests(
    connection: duckdb.DuckDBPyConnection, batch_id: str
) -> tuple[dict[str, BatchRequest], set[str]]:
    """Return the requests of a batch with their next attempt numbers.

    Also returns the custom_ids that already have a record of this batch in
    the response log (from an ingest that was interrupted).
    """
    rows = connection.execute(
        """
        WITH mine AS (
            SELECT br.custom_id, br.request_hash, rv.stage, rv.item_key
            FROM batch_requests br
            LEFT JOIN request_versions rv
              ON rv.custom_id = br.custom_id AND rv.request_hash = br.request_hash
            WHERE br.batch_id = $batch_id
        ),
        logged AS (
            SELECT a.custom_id, a.request_hash, count(*) AS attempts,
                   bool_or(a.batch_id = $batch_id) AS has_record
            FROM attempts a
            WHERE (a.custom_id, a.request_hash) IN (
                SELECT (custom_id, request_hash) FROM mine
            )
            GROUP BY a.custom_id, a.request_hash
        )
        SELECT m.custom_id, m.request_hash, m.stage, m.item_key,
               coalesce(l.attempts, 0), coalesce(l.has_record, false)
        FROM mine m
        LEFT JOIN logged l
          ON l.custom_id = m.custom_id AND l.request_hash = m.request_hash
        """,
        {"batch_id": batch_id},
    ).fetchall()
    requests = {}
    logged = set()
    for custom_id, request_hash, stage, item_key, attempts, has_record in rows:
        if stage is None:  # the version is gone from the store; parse the id
            stage, _, item_key = custom_id.partition(":")
        requests[custom_id] = BatchRequest(
            custom_id, request_hash, stage, item_key, int(attempts) + 1
        )
        if has_record:
            logged.add(custom_id)
    return requests, logged


def enqueued_tokens(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Return the tokens each model has enqueued in live batches."""
    states = ", ".join(f"'{state}'" for state in LIVE_STATES)
    rows = connection.execute(
        f"""
        SELECT model, sum(coalesce(enqueued_tokens, 0)) FROM provider_batches
        WHERE status IN ({states}) GROUP BY model
        """
    ).fetchall()
    return {model: int(tokens) for model, tokens in rows}


def consecutive_failures(connection: duckdb.DuckDBPyConnection, model: str) -> int:
    """Return how many of the model's newest batches failed as a whole in a row."""
    rows = connection.execute(
        "SELECT status FROM provider_batches WHERE model = ? "
        "ORDER BY created_at DESC, batch_id DESC",
        [model],
    ).fetchall()
    count = 0
    for (status,) in rows:
        if status != "failed":
            break
        count += 1
    return count


def failure_backoff(
    connection: duckdb.DuckDBPyConnection, model: str, poll_interval: float
) -> timedelta:
    """Return how long to wait before resubmitting after a whole-batch failure.

    The wait doubles with each consecutive failure of the model, from one poll
    interval up to an hour.
    """
    failures = max(consecutive_failures(connection, model), 1)
    seconds = poll_interval * 2 ** min(failures - 1, 20)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def blocked_models(
    connection: duckdb.DuckDBPyConnection, now: datetime
) -> dict[str, str]:
    """Return the models that may not get new batches yet, with the reason.

    A model's newest whole-batch failure blocks it until its backoff has
    passed and the model's live batches have finished (they hold the enqueued
    tokens that a `token_limit_exceeded` failure ran into). A batch created
    after the failure lifts the block.
    """
    live = ", ".join(f"'{state}'" for state in LIVE_STATES)
    rows = connection.execute(
        f"""
        WITH newest_failure AS (
            SELECT model, arg_max(batch_id, created_at) AS batch_id,
                   max(created_at) AS created_at,
                   arg_max(resubmit_after, created_at) AS resubmit_after
            FROM provider_batches WHERE status = 'failed' AND model IS NOT NULL
            GROUP BY model
        )
        SELECT f.model, f.batch_id, f.resubmit_after,
               (SELECT count(*) FROM provider_batches b
                WHERE b.model = f.model AND b.status IN ({live})) AS live_count
        FROM newest_failure f
        WHERE NOT EXISTS (
            SELECT 1 FROM provider_batches b
            WHERE b.model = f.model AND b.created_at > f.created_at
        )
        """
    ).fetchall()
    blocked = {}
    for model, batch_id, resubmit_after, live_count in rows:
        if resubmit_after is not None and now < resubmit_after:
            blocked[model] = (
                f"batch {batch_id} failed as a whole; resubmitting after "
                f"{resubmit_after:%H:%M:%S} UTC"
            )
        elif live_count:
            blocked[model] = (
                f"batch {batch_id} failed as a whole; waiting for {live_count} "
                "live batches of the model to finish"
            )
    return blocked
