"""`execute --mode batch`: submit, poll, ingest, and survive restarts.

One run: take the job's batch lock, compact a crashed run's response log,
adopt batches and delete uploads an interrupted run left behind, poll and
ingest the live batches, then submit the pending requests that no live batch
contains. With `wait`, poll (and submit what became pending again) every
`provider.batch.poll_interval` seconds until nothing is live.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from batchkit.execute.batch.client import BatchClient
from batchkit.execute.batch.context import (
    BatchRun,
    MetadataHook,
    ProgressCallback,
    StepHook,
)
from batchkit.execute.batch.poll import cancel_batches, poll_batches
from batchkit.execute.batch.recover import batch_lock, recover_orphans
from batchkit.execute.batch.store import consecutive_failures
from batchkit.execute.batch.submit import submit_pending
from batchkit.execute.batch.summary import BatchSummary
from batchkit.execute.responselog import ResponseLog, new_run_id, recover
from batchkit.execute.runlog import run_log
from batchkit.execute.select import Selection
from batchkit.job.model import Job
from batchkit.providers.endpoint import resolve_endpoint
from batchkit.store.database import connect
from batchkit.store.lock import execute_lock

logger = logging.getLogger(__name__)

# After this many whole-batch failures of a model in a row, --wait stops
# resubmitting and reports the failure instead.
MAX_WHOLE_FAILURES = 5


def execute_batch(
    job: Job,
    selection: Selection,
    *,
    base_url: str | None = None,
    poll_only: bool = False,
    wait: bool = False,
    cancel: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchSummary:
    """Submit pending requests as provider batches, or poll, wait for or cancel them."""
    endpoint = resolve_endpoint(job, base_url)
    with execute_lock(job), BatchClient(endpoint) as client:
        return run_batches(
            job,
            selection,
            client,
            poll_only=poll_only,
            wait=wait,
            cancel=cancel,
            progress=progress,
        )


def run_batches(
    job: Job,
    selection: Selection,
    client: BatchClient,
    *,
    poll_only: bool = False,
    wait: bool = False,
    cancel: bool = False,
    progress: ProgressCallback | None = None,
    on_step: StepHook | None = None,
    extra_metadata: MetadataHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchSummary:
    """Run `execute_batch` with a given client; tests pass hooks to simulate crashes."""
    summary = BatchSummary(run_id=new_run_id())
    with batch_lock(job), run_log(job, summary.run_id):
        recover(job)
        logger.info("batch run %s of job %s started", summary.run_id, job.name)
        with ResponseLog(job, summary.run_id) as log:
            run = BatchRun(
                job=job,
                client=client,
                log=log,
                summary=summary,
                progress=progress,
                on_step=on_step,
                extra_metadata=extra_metadata,
            )
            recover_orphans(run)
            if cancel:
                cancel_batches(run, sleep)
            else:
                _poll_and_submit(run, selection, poll_only, wait, sleep)
        logger.info("batch run %s finished: %s", summary.run_id, summary.lines()[-1])
    return summary


def _poll_and_submit(
    run: BatchRun,
    selection: Selection,
    poll_only: bool,
    wait: bool,
    sleep: Callable[[float], None],
) -> None:
    if poll_only:
        selection = replace(selection, limit=0)
    held_back = 0
    while True:
        live = poll_batches(run)
        remaining = _remaining_selection(run, selection)
        if remaining and (run.needs_selection or held_back):
            run.needs_selection = False
            created_before = len(run.summary.created)
            held_back = submit_pending(run, remaining)
            live += len(run.summary.created) - created_before
        if not wait:
            return
        if not live and (not held_back or _is_stuck(run)):
            return
        sleep(run.job.provider.batch.poll_interval)


def _remaining_selection(run: BatchRun, selection: Selection) -> Selection | None:
    """Return the selection for the next submit, or None when nothing may be sent.

    `--limit N` caps the requests one run submits (or records as too large),
    also across the rounds of `--wait`.
    """
    if selection.limit is None:
        return selection
    remaining = selection.limit - run.summary.submitted - run.summary.too_large
    return replace(selection, limit=remaining) if remaining > 0 else None


def _is_stuck(run: BatchRun) -> bool:
    """Return whether every blocked model failed too often in a row to go on."""
    with connect(run.job, read_only=True) as connection:
        failures = {
            model: consecutive_failures(connection, model)
            for model in run.summary.blocked
        }
    stuck = [m for m, count in failures.items() if count >= MAX_WHOLE_FAILURES]
    for model in stuck:
        run.summary.errors.append(
            f"the last {failures[model]} batches of {model} failed as a whole; "
            "see provider_batches.error, fix the cause, then rerun"
        )
    return bool(failures) and len(stuck) == len(failures)
