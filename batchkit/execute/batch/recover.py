"""Crash recovery: one batch run per job, adopted batches and orphan uploads.

A run can die after the provider accepted a file or a batch and before the
job database recorded it. On start, every batch of the account whose
metadata names this job and whose id the database does not know is adopted.
It is recorded with the custom_ids of its input file, then polled and
ingested like any other, so its requests are not submitted twice. An
uploaded file of this job that no batch uses is deleted, because its
requests are still pending and go into a fresh file.
"""

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from batchkit.execute.batch.context import (
    FILE_KEY,
    JOB_KEY,
    RUN_KEY,
    BatchRun,
    batches_dir,
    is_job_upload,
)
from batchkit.execute.batch.errors import BatchError, BatchRunLockedError
from batchkit.execute.batch.ingest import read_lines
from batchkit.execute.batch.store import insert_batch, known_batch_ids
from batchkit.execute.batch.summary import BatchReport
from batchkit.job.model import Job
from batchkit.providers.errors import NotFoundError
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"


@contextmanager
def batch_lock(job: Job) -> Iterator[None]:
    """Hold the job's batch lock, so orphan clean-up never races another run."""
    folder = batches_dir(job)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchRunLockedError(
                f"{path}: another `batchkit execute --mode batch` of job "
                f"{job.name!r} is running; wait for it to end, then rerun"
            ) from None
        yield  # the lock goes with the file handle, also when the process dies


def recover_orphans(run: BatchRun) -> None:
    """Adopt this job's unknown batches and delete its uploads that no batch uses."""
    job = run.job
    with connect(job, read_only=True) as connection:
        known = known_batch_ids(connection)
        used_files = {
            row[0]
            for row in connection.execute(
                "SELECT input_file_id FROM provider_batches"
            ).fetchall()
        }
    for batch in run.client.iter_batches():
        metadata = batch.get("metadata") or {}
        used_files.add(str(batch.get("input_file_id")))
        if metadata.get(JOB_KEY) != job.name or batch["id"] in known:
            continue
        adopt_batch(run, batch)
    for uploaded in run.client.iter_files():
        filename = str(uploaded.get("filename") or "")
        if uploaded["id"] in used_files or not is_job_upload(job, filename):
            continue
        run.client.delete_file(uploaded["id"])
        run.summary.deleted_files.append(uploaded["id"])
        logger.warning(
            "deleted the uploaded file %s (%s): an interrupted run uploaded it "
            "but created no batch, and its requests are still pending",
            uploaded["id"],
            filename,
        )


def adopt_batch(run: BatchRun, batch: dict[str, Any]) -> None:
    """Record a batch that an interrupted run created but did not record."""
    lines = _input_lines(run, batch)
    requests = []
    models = set()
    for line in lines:
        body = line.get("body")
        custom_id = line.get("custom_id")
        if not isinstance(body, dict) or not isinstance(custom_id, str):
            continue
        requests.append((custom_id, request_hash(body)))
        models.add(str(body.get("model")))
    model = batch.get("model") or (min(models) if models else None)
    with connect(run.job) as connection:
        count = insert_batch(
            connection,
            batch,
            run_id=str((batch.get("metadata") or {}).get(RUN_KEY) or run.run_id),
            model=str(model),
            input_path=None,
            enqueued_tokens=None,
            requests=requests,
        )
        _estimate_enqueued(connection, batch["id"])
    run.summary.adopted.append(batch["id"])
    run.summary.batches[batch["id"]] = BatchReport(
        batch["id"], str(batch.get("status")), count
    )
    logger.warning(
        "adopted batch %s (%s requests, status %s) that an interrupted run "
        "created but did not record",
        batch["id"],
        count,
        batch.get("status"),
    )


def request_hash(body: dict[str, Any]) -> str:
    """Return the request_hash of a line's body, computed as prepare computes it."""
    encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()[:32]


def _input_lines(run: BatchRun, batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # The provider's copy is what the batch runs, so read it rather than
    # the local file, which a crash may have left half written.
    target = batches_dir(run.job) / "downloads" / f"{batch['id']}-input.jsonl"
    metadata = batch.get("metadata") or {}
    try:
        path = run.client.download_file(str(batch["input_file_id"]), target)
    except NotFoundError:
        path = (
            batches_dir(run.job)
            / str(metadata.get(RUN_KEY))
            / str(metadata.get(FILE_KEY))
        )
        if not path.is_file():
            raise BatchError(
                f"batch {batch['id']} of job {run.job.name!r} is not recorded, its "
                f"input file {batch['input_file_id']} is gone from the provider "
                f"and {path} does not exist, so its requests are unknown; cancel "
                "the batch at the provider or restore the file, then rerun"
            ) from None
        logger.warning(
            "the input file of batch %s is gone from the provider; using %s",
            batch["id"],
            path,
        )
    return read_lines(path)


def _estimate_enqueued(connection: Any, batch_id: str) -> None:
    connection.execute(
        """
        UPDATE provider_batches SET enqueued_tokens = (
            SELECT sum(rv.prompt_tokens_est + rv.max_tokens)
            FROM batch_requests br
            JOIN request_versions rv
              ON rv.custom_id = br.custom_id AND rv.request_hash = br.request_hash
            WHERE br.batch_id = ?
        )
        WHERE batch_id = ?
        """,
        [batch_id, batch_id],
    )
