"""Write pending requests into batch files, upload them and create the batches.

A batch is recorded in the job database right after the provider created
it. A crash between the upload and the record leaves either an uploaded file
without a batch or a batch the database does not know. `recover.py` handles
both on the next start.
"""

import logging
import uuid
from datetime import UTC, datetime

from batchkit.execute.batch.context import BatchRun, upload_name
from batchkit.execute.batch.files import BatchFile, BatchFileWriter, Oversized
from batchkit.execute.batch.store import blocked_models, enqueued_tokens, insert_batch
from batchkit.execute.batch.summary import BatchReport
from batchkit.execute.select import Selection, iter_pending
from batchkit.store.database import connect

logger = logging.getLogger(__name__)


def submit_pending(run: BatchRun, selection: Selection) -> int:
    """Submit the selected pending requests; return how many are held back.

    Requests of a model that is blocked after a whole-batch failure are held
    back, and so are requests over the token budget.
    """
    job = run.job
    with connect(job, read_only=True) as connection:
        blocked = blocked_models(connection, datetime.now(UTC))
        enqueued = enqueued_tokens(connection)
    run.summary.blocked = blocked
    held_back = 0
    with BatchFileWriter(
        run.run_dir, job.provider.batch, enqueued, run.next_file_number
    ) as writer:
        for chunk in iter_pending(job, selection):
            for request in chunk:
                if request.model in blocked:
                    held_back += 1
                    continue
                writer.add(request)
        files = writer.close()
    run.next_file_number = writer.next_number
    run.summary.deferred = writer.deferred
    _record_oversized(run, writer.oversized)
    for batch_file in files:
        submit_file(run, batch_file)
    return held_back + writer.deferred


def _record_oversized(run: BatchRun, oversized: list[Oversized]) -> None:
    now = datetime.now(UTC)
    for item in oversized:
        request = item.request
        if request.custom_id in run.reported_too_large:
            continue  # one failed attempt per run, however often --wait selects it
        run.reported_too_large.add(request.custom_id)
        run.log.append(
            {
                "attempt_id": uuid.uuid4().hex,
                "custom_id": request.custom_id,
                "request_hash": request.request_hash,
                "stage": request.stage,
                "item_key": request.item_key,
                "attempt": request.logged_attempts + 1,
                "run_id": run.run_id,
                "mode": "batch",
                "status": "failed",
                "error_type": "too_large",
                "error_message": item.reason,
                "model": request.model,
                "started_at": now,
                "finished_at": now,
                "latency_ms": 0.0,
            }
        )
        run.summary.too_large += 1
        logger.warning("request %s not submitted: %s", request.custom_id, item.reason)
    if oversized:
        run.log.compact()


def submit_file(run: BatchRun, batch_file: BatchFile) -> str:
    """Upload one batch file, create its batch and record it; return the batch id."""
    job = run.job
    uploaded = run.client.upload_file(
        batch_file.path, upload_name(job, run.run_id, batch_file.path)
    )
    logger.info(
        "uploaded %s as %s (%s lines, %s bytes)",
        batch_file.path.name,
        uploaded["id"],
        batch_file.line_count,
        batch_file.byte_count,
    )
    run.step("uploaded", uploaded)

    batch = run.client.create_batch(
        uploaded["id"], job.provider.batch.completion_window, run.metadata(batch_file)
    )
    run.step("created", batch)

    with connect(job) as connection:
        insert_batch(
            connection,
            batch,
            run_id=run.run_id,
            model=batch_file.model,
            input_path=str(batch_file.path),
            enqueued_tokens=batch_file.token_count,
            requests=batch_file.requests,
        )

    logger.info(
        "created batch %s from %s: %s requests of %s, status %s",
        batch["id"],
        uploaded["id"],
        batch_file.line_count,
        batch_file.model,
        batch.get("status"),
    )
    run.summary.batches[batch["id"]] = BatchReport(
        batch["id"], str(batch.get("status")), batch_file.line_count
    )
    run.summary.created.append(batch["id"])
    run.summary.submitted += batch_file.line_count
    return str(batch["id"])
