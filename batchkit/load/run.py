"""The load phase: reconcile, validate, and upsert valid results into the target.

Only results that passed their stage's checks are loaded; rejects stay in
`verdicts` with their reasons, where `execute --only-failed` finds them. The
load ledger makes reruns send only new and changed rows.
"""

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchkit.job.model import Job, TargetKind
from batchkit.load.ddl import create_statements, infer_item_types, schema_script
from batchkit.load.errors import ChunkRejectedError, LoadError, TransientLoadError
from batchkit.load.ledger import LedgerWriter
from batchkit.load.reconcile import Reconciled, read_results
from batchkit.load.rows import (
    Result,
    RowShape,
    chunk_rows,
    load_key,
    long_rows,
    row_bytes,
    row_shape,
    target_key_text,
    wide_row,
)
from batchkit.load.targets import Target
from batchkit.load.targets.parquet import export_path, write_export
from batchkit.load.targets.postgres import PostgresTarget
from batchkit.load.validate import refresh_verdicts
from batchkit.secrets import find_secret
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

# Called with (rows sent so far, rows to send) after each committed chunk.
ProgressCallback = Callable[[int, int], None]

CHUNK_ATTEMPTS = 5  # attempts per chunk after transient errors
RETRY_BASE_SECONDS = 0.5  # first backoff; doubles per attempt, plus jitter
RETRY_MAX_SECONDS = 10.0

Planned = tuple[tuple[Any, ...], list[Result]]  # a target row and its results


@dataclass
class StageCounts:
    """A stage's valid results by what the load does with them, and its rejects."""

    inserts: int = 0  # not in the ledger of this target yet
    updates: int = 0  # in the ledger with another content or item columns
    unchanged: int = 0  # in the ledger as they are now, so not sent
    resent: int = 0  # in the ledger as they are now, but sent again by --full
    exported: int = 0  # written to the Parquet export, which uses no ledger
    rejected: int = 0  # results that failed the stage's checks; never sent


@dataclass
class LoadSummary:
    """Counts of one load: results by change per stage, rows planned and committed."""

    target: str  # host, database and table, or the export file; no credentials
    kind: TargetKind
    table: str
    layout: str
    dry_run: bool
    full: bool = False  # --full: every valid result is sent and rewrites its row
    stages: dict[str, StageCounts] = field(default_factory=dict)
    reject_reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    rows_planned: int = 0  # target rows to send
    rows_sent: int = 0  # target rows in committed chunks
    rows_inserted: int | None = 0  # as reported by the target; None over REST
    # Existing rows the upsert changed: rows whose content hashes or item
    # columns differed, or under --full every existing row that was sent.
    rows_updated: int | None = 0
    chunks: int = 0  # committed chunks, after splits
    retries: int = 0  # chunk attempts repeated after a transient error
    splits: int = 0  # chunks halved after a timeout, 413 or 5xx
    duplicates: int = 0  # valid results dropped for a newer one with the same key
    nul_removed: int = 0  # U+0000 characters removed before sending
    ledger_entries: int = 0
    export_path: Path | None = None
    seconds: float = 0.0
    # The job's variable names, for the hint after a Parquet export.
    database_url_env: str = ""
    supabase_url_env: str = ""
    supabase_key_env: str = ""


def choose_target(job: Job, override: str | None = None) -> TargetKind:
    """Return the target kind: the override, load.target, or the first configured."""
    kind = override or job.load.target
    if kind not in (None, "postgres", "rest", "parquet"):
        raise LoadError(f"--target {kind!r}: must be postgres, rest or parquet")
    if kind is not None:
        return kind  # type: ignore[return-value]
    if find_secret(job, job.load.database_url_env):
        return "postgres"
    has_url = find_secret(job, job.load.supabase_url_env)
    if has_url and find_secret(job, job.load.supabase_key_env):
        return "rest"
    return "parquet"


def _require(job: Job, name: str, what: str) -> str:
    value = find_secret(job, name)
    if not value:
        raise LoadError(
            f"{what} variable {name} is not set (load in {job.path}); run "
            f"`export {name}=...` or add it to a git-ignored .env file in the "
            f"current directory or in {job.path.parent}"
        )
    return value


def build_target(
    job: Job, kind: TargetKind, shape: RowShape, *, full: bool = False
) -> Target | None:
    """Return the target to write to, or None for the Parquet export.

    With `full`, the PostgreSQL upsert rewrites every row it is sent. The REST
    upsert always does, because PostgREST's merge has no condition.
    """
    spec = job.load
    if kind == "postgres":
        url = _require(job, spec.database_url_env, "the database URL")
        return PostgresTarget(job, shape, url, spec.database_url_env, rewrite=full)
    if kind == "rest":
        url = _require(job, spec.supabase_url_env, "the Supabase project URL")
        key = _require(job, spec.supabase_key_env, "the Supabase service key")
        # supabase-py takes a quarter of a second to import; only REST needs it.
        from batchkit.load.targets.rest import RestTarget

        return RestTarget(job, shape, url, key, spec.supabase_key_env)
    return None


def load_results(
    job: Job,
    *,
    target: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    create_table: bool = False,
    progress: ProgressCallback | None = None,
) -> LoadSummary:
    """Validate the job's results and upsert the valid ones into the target.

    `target` overrides load.target, and `dry_run` only counts. `full` sends
    every valid result again and rewrites its row, even where the ledger
    records it as loaded. `create_table` creates a missing table (PostgreSQL).
    """
    started = time.monotonic()
    kind = choose_target(job, target)
    shape = row_shape(job)
    destination = build_target(job, kind, shape, full=full)
    identity = destination.identity if destination else str(export_path(job))
    with connect(job) as connection:
        # DuckDB draws its own progress bar on stdout for long queries.
        connection.execute("SET enable_progress_bar = false")
        refresh_verdicts(connection, job)
        reconciled = read_results(connection, job, shape, identity)
        item_types = infer_item_types(connection, (*load_key(job), *shape.item_columns))
    summary = LoadSummary(
        identity,
        kind,
        job.load.table,
        shape.layout,
        dry_run,
        full=full,
        database_url_env=job.load.database_url_env,
        supabase_url_env=job.load.supabase_url_env,
        supabase_key_env=job.load.supabase_key_env,
    )
    planned = plan_rows(
        job, shape, reconciled, summary, full=full, export=destination is None
    )
    logger.info("load: %s rows to %s (%s layout)", len(planned), identity, shape.layout)
    if dry_run:
        return summary
    if destination is None:
        rows = (row for row, _ in planned)
        summary.rows_inserted = summary.rows_updated = None
        summary.export_path = write_export(job, shape, item_types, rows)
        summary.rows_sent = len(planned)
    else:
        statements = create_statements(job, item_types) if create_table else None
        _send_all(job, destination, statements, planned, summary, progress)
    summary.seconds = time.monotonic() - started
    logger.info(
        "load finished: %s rows sent to %s in %s chunks, %.1f s",
        summary.rows_sent,
        identity,
        summary.chunks,
        summary.seconds,
    )
    return summary


def plan_rows(
    job: Job,
    shape: RowShape,
    reconciled: Reconciled,
    summary: LoadSummary,
    *,
    full: bool,
    export: bool = False,
) -> list[Planned]:
    """Count each stage's results by change and return the rows to send, by key.

    With `export` (the Parquet export) every valid result is counted as
    exported and planned, because the export is rewritten whole.
    """
    summary.stages = {name: StageCounts() for name in job.stage_names}
    summary.duplicates = reconciled.duplicates
    summary.nul_removed = reconciled.nul_removed
    for stage, count in reconciled.rejected.items():
        summary.stages.setdefault(stage, StageCounts()).rejected = count
    summary.reject_reasons = {
        stage: dict(reasons) for stage, reasons in reconciled.reject_reasons.items()
    }
    by_key: dict[str, list[Result]] = defaultdict(list)
    changed_keys: set[str] = set()
    for result in reconciled.results:
        key = target_key_text(result.target_key)
        by_key[key].append(result)
        loaded = reconciled.ledger.get((key, result.stage))
        counts = summary.stages.setdefault(result.stage, StageCounts())
        if export:
            counts.exported += 1
        elif loaded is None:
            counts.inserts += 1
        elif loaded != result.row_hash:
            counts.updates += 1
        elif full:
            counts.resent += 1
        else:
            counts.unchanged += 1
            continue
        changed_keys.add(key)
    send_all = full or export
    planned = list(_rows_for(shape, by_key, changed_keys, reconciled.ledger, send_all))
    summary.rows_planned = len(planned)
    return planned


def _rows_for(
    shape: RowShape,
    by_key: dict[str, list[Result]],
    changed_keys: set[str],
    ledger: dict[tuple[str, str], str],
    full: bool,
) -> Iterator[Planned]:
    for key in sorted(changed_keys):
        results = sorted(by_key[key], key=lambda result: result.stage)
        if shape.layout == "wide":
            yield wide_row(shape, results), results
            continue
        for result in results:
            if full or ledger.get((key, result.stage)) != result.row_hash:
                yield next(long_rows([result])), [result]


def _send_all(
    job: Job,
    destination: Target,
    statements: list[str] | None,
    planned: list[Planned],
    summary: LoadSummary,
    progress: ProgressCallback | None,
) -> None:
    ledger = LedgerWriter(job, destination.identity)
    if summary.kind == "rest":
        summary.rows_inserted = summary.rows_updated = None
    try:
        destination.open(statements)
        chunks = chunk_rows(
            planned, job.load.chunk_rows, job.load.chunk_bytes, _planned_bytes
        )
        for chunk in chunks:
            _send_chunk(destination, chunk, ledger, summary)
            if progress is not None:
                progress(summary.rows_sent, len(planned))
    finally:
        ledger.flush()
        summary.ledger_entries = ledger.written
        destination.close()


def _planned_bytes(pair: Planned) -> int:
    return row_bytes(pair[0])


def _backoff(attempt: int) -> float:
    delay = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)
    return delay * (0.5 + random.random() / 2)


def _send_chunk(
    destination: Target,
    chunk: list[Planned],
    ledger: LedgerWriter,
    summary: LoadSummary,
) -> None:
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            written = destination.write([row for row, _ in chunk])
        except ChunkRejectedError as error:
            _split(destination, chunk, ledger, summary, error)
            return
        except TransientLoadError as error:
            if attempt == CHUNK_ATTEMPTS:
                raise LoadError(
                    f"{error}; gave up after {attempt} attempts of a chunk of "
                    f"{len(chunk)} rows. Committed chunks are kept, so rerun load "
                    "to send the rest"
                ) from None
            delay = _backoff(attempt)
            logger.warning(
                "chunk of %s rows failed (attempt %s of %s), retrying in %.1f s: %s",
                len(chunk),
                attempt,
                CHUNK_ATTEMPTS,
                delay,
                error,
            )
            summary.retries += 1
            destination.reset()
            time.sleep(delay)
            continue
        _record(chunk, written.inserted, written.updated, ledger, summary)
        return


def _split(
    destination: Target,
    chunk: list[Planned],
    ledger: LedgerWriter,
    summary: LoadSummary,
    error: ChunkRejectedError,
) -> None:
    if len(chunk) == 1:
        raise LoadError(
            f"{error}; a single row of about {row_bytes(chunk[0][0]):,} bytes is "
            "rejected too, so raise the role's statement_timeout or the request "
            "size limit, or load through the database URL"
        ) from None
    half = len(chunk) // 2
    logger.warning(
        "chunk of %s rows rejected, sending it in halves: %s", len(chunk), error
    )
    summary.splits += 1
    _send_chunk(destination, chunk[:half], ledger, summary)
    _send_chunk(destination, chunk[half:], ledger, summary)


def _record(
    chunk: list[Planned],
    inserted: int | None,
    updated: int | None,
    ledger: LedgerWriter,
    summary: LoadSummary,
) -> None:
    summary.chunks += 1
    summary.rows_sent += len(chunk)
    if summary.rows_inserted is not None and inserted is not None:
        summary.rows_inserted += inserted
    if summary.rows_updated is not None and updated is not None:
        summary.rows_updated += updated
    ledger.add([result for _, results in chunk for result in results])


def target_schema(job: Job) -> str:
    """Return the target table's DDL, with column types from the stored items."""
    shape = row_shape(job)
    columns = (*load_key(job), *shape.item_columns)
    if not job.db_path.exists():
        return schema_script(job, dict.fromkeys(columns, "text"))
    with connect(job, read_only=True) as connection:
        item_types = infer_item_types(connection, columns)
    return schema_script(job, item_types)
