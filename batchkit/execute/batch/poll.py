"""Poll live batches, keep `provider_batches` current and ingest finished ones."""

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchkit.execute.batch.context import BatchRun, batches_dir
from batchkit.execute.batch.ingest import FinishedBatch, IngestCounts, ingest_batch
from batchkit.execute.batch.store import (
    LIVE_STATES,
    BatchRow,
    failure_backoff,
    load_batch_requests,
    mark_ingested,
    unfinished_batches,
    update_batch,
)
from batchkit.execute.batch.summary import BatchReport
from batchkit.providers.errors import BadRequestError, NotFoundError
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 30.0


def poll_batches(run: BatchRun) -> int:
    """Poll every unfinished batch and ingest those that ended; return how many live.

    The provider is asked first and the database written once after, so no
    connection stays open during the HTTP calls.
    """
    with connect(run.job, read_only=True) as connection:
        rows = unfinished_batches(connection)
    fetched = {
        row.batch_id: run.client.get_batch(row.batch_id) for row in rows if row.is_live
    }
    if fetched:
        with connect(run.job) as connection:
            for batch in fetched.values():
                _store(run, connection, batch)
            rows = unfinished_batches(connection)
    live = 0
    for row in rows:
        previous = run.summary.batches.get(row.batch_id)
        if row.batch_id in fetched and (
            previous is None or previous.status != row.status
        ):
            _log_change(row, fetched[row.batch_id], previous)
        _report(run, row)
        if row.is_live:
            live += 1
        elif row.ingested_at is None:
            ingest(run, row)
            run.needs_selection = True
    if run.progress is not None:
        run.progress(run.summary)
    return live


def _store(run: BatchRun, connection: Any, batch: dict[str, Any]) -> None:
    update_batch(connection, batch)
    if batch.get("status") != "failed":
        return
    row = connection.execute(
        "SELECT model, resubmit_after FROM provider_batches WHERE batch_id = ?",
        [batch["id"]],
    ).fetchone()
    if row is None or row[0] is None or row[1] is not None:
        return
    backoff = failure_backoff(connection, row[0], run.job.provider.batch.poll_interval)
    connection.execute(
        "UPDATE provider_batches SET resubmit_after = ? WHERE batch_id = ?",
        [datetime.now(UTC) + backoff, batch["id"]],
    )


def _log_change(
    row: BatchRow, batch: dict[str, Any], previous: BatchReport | None
) -> None:
    before = previous.status if previous is not None else "recorded"
    if row.status == "failed":
        logger.warning("batch %s: %s -> failed (%s)", row.batch_id, before, row.error)
        return
    counts = batch.get("request_counts") or {}
    logger.info(
        "batch %s: %s -> %s (%s of %s completed, %s failed)",
        row.batch_id,
        before,
        row.status,
        counts.get("completed"),
        counts.get("total"),
        counts.get("failed"),
    )


def _report(run: BatchRun, row: BatchRow) -> None:
    report = run.summary.batches.get(row.batch_id)
    if report is None:
        report = BatchReport(row.batch_id, row.status, row.request_count)
        run.summary.batches[row.batch_id] = report
    report.status = row.status
    report.completed_count = row.completed_count
    report.failed_count = row.failed_count
    report.error = row.error


def ingest(run: BatchRun, row: BatchRow) -> None:
    """Append the lines of a finished batch to the response log and mark it ingested.

    A batch that failed as a whole ran no request, so it adds no attempt and
    its requests are simply pending again.
    """
    counts = None
    if row.status != "failed":
        counts = _ingest_lines(run, row)
    with connect(run.job) as connection:
        mark_ingested(connection, row.batch_id)
    report = run.summary.batches[row.batch_id]
    if counts is not None:
        report.ok += counts.ok
        report.failed += counts.failed + counts.unreturned
    logger.info(
        "ingested batch %s (%s): %s ok, %s failed, %s not returned, %s unknown lines",
        row.batch_id,
        row.status,
        counts.ok if counts else 0,
        counts.failed if counts else 0,
        counts.unreturned if counts else 0,
        len(counts.unknown) if counts else 0,
    )


def _ingest_lines(run: BatchRun, row: BatchRow) -> IngestCounts:
    files = _download(run, row)
    with connect(run.job, read_only=True) as connection:
        requests, logged = load_batch_requests(connection, row.batch_id)
    finished = FinishedBatch(
        batch_id=row.batch_id,
        run_id=run.run_id,
        status=row.status,
        model=row.model or "",
        created_at=row.created_at,
        finished_at=row.finished_at or datetime.now(UTC),
        prices=run.job.prices,
    )
    counts = ingest_batch(finished, requests, files, run.log.append, logged)
    # Selection reads the Parquet parts, so compact before the next submit.
    run.log.compact()
    return counts


def _download(run: BatchRun, row: BatchRow) -> list[Path]:
    folder = batches_dir(run.job) / "downloads"
    files = []
    # The output file first, so that a line in both files counts as ok.
    for kind, file_id in (("output", row.output_file_id), ("error", row.error_file_id)):
        if not file_id:
            continue
        target = folder / f"{row.batch_id}-{kind}.jsonl"
        try:
            files.append(run.client.download_file(file_id, target))
        except NotFoundError:
            # Its lines count as not returned, so their requests are pending again.
            message = (
                f"the {kind} file {file_id} of batch {row.batch_id} is gone from "
                "the provider; the requests it held are pending again"
            )
            logger.error("%s", message)
            run.summary.errors.append(message)
    return files


def cancel_batches(run: BatchRun, sleep: Any = time.sleep) -> None:
    """Cancel the job's live batches, wait briefly for them to stop, and ingest them."""
    with connect(run.job, read_only=True) as connection:
        rows = [row for row in unfinished_batches(connection) if row.is_live]
    for row in rows:
        try:
            run.client.cancel_batch(row.batch_id)
        except BadRequestError as error:  # it finished meanwhile
            logger.info("batch %s was not cancelled: %s", row.batch_id, error)
            continue
        run.summary.cancelled.append(row.batch_id)
        logger.info("cancelling batch %s", row.batch_id)
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    interval = min(run.job.provider.batch.poll_interval, 1.0)
    while poll_batches(run) and time.monotonic() < deadline:
        sleep(interval)
    still_live = [
        report.batch_id
        for report in run.summary.batches.values()
        if report.status in LIVE_STATES
    ]
    if still_live:
        run.summary.errors.append(
            f"batches still cancelling after {CANCEL_WAIT_SECONDS:.0f} s: "
            f"{', '.join(still_live)}; rerun with --poll to ingest them"
        )
