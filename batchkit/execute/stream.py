"""Stream-mode execute from start to summary: checks, recovery, the run, the log."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from batchkit.execute.budget import Budget, check_budget_prices
from batchkit.execute.errors import ExecuteError
from batchkit.execute.progress import ExecuteProgress
from batchkit.execute.responselog import ResponseLog, new_run_id, recover
from batchkit.execute.retry import RetryPolicy
from batchkit.execute.runlog import run_log
from batchkit.execute.runner import StreamRun, StreamSettings
from batchkit.execute.select import Selection, count_pending
from batchkit.job.model import Job
from batchkit.load.validate import refresh_verdicts
from batchkit.providers.endpoint import Endpoint, resolve_endpoint
from batchkit.providers.errors import AuthenticationError, RunStoppingError
from batchkit.store.database import connect
from batchkit.store.lock import execute_lock

logger = logging.getLogger(__name__)


@dataclass
class StreamOptions:
    """Command-line overrides of one stream run; None keeps the job file's value."""

    base_url: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    max_cost: float | None = None  # USD for the whole job, earlier runs included
    off_peak: bool = False
    grace_seconds: float = 30.0
    chunk_size: int = 1000
    compact_rows: int = 5000
    compact_seconds: float = 30.0
    retry: RetryPolicy | None = None
    handle_signals: bool = True


@dataclass(frozen=True)
class DryRun:
    """A run's plan: pending count, worst-case cost and the spend so far, in USD."""

    pending: int
    max_cost_usd: float | None
    spent_usd: float


@dataclass
class StreamSummary:
    """The outcome of one stream run."""

    run_id: str
    log_path: Path
    selected: int
    ok: int
    failed: int
    cancelled: int
    attempts: int
    retries: int
    spent_usd: float
    spent_total_usd: float
    elapsed_seconds: float
    recovered: int = 0
    stop_reason: str | None = None  # interrupted, budget, provider or error
    stop_message: str | None = None

    def lines(self) -> list[str]:
        """Return the summary as printable lines."""
        rate = self.attempts / self.elapsed_seconds * 60 if self.elapsed_seconds else 0
        lines = [
            f"run {self.run_id}: {self.ok:,} ok, {self.failed:,} failed of "
            f"{self.selected:,} selected; {self.attempts:,} attempts "
            f"({self.retries:,} retries) in {self.elapsed_seconds:,.1f} s "
            f"({rate:,.0f} per minute)",
            f"spent ${self.spent_usd:,.4f} in this run, ${self.spent_total_usd:,.4f} "
            "in this job so far",
        ]
        if self.cancelled:
            lines.append(f"{self.cancelled:,} requests cancelled in flight")
        if self.recovered:
            lines.append(
                f"recovered {self.recovered:,} attempts from a crashed run's log"
            )
        lines.append(f"log: {self.log_path}")
        return lines


def _settings(job: Job, options: StreamOptions) -> StreamSettings:
    provider = job.provider
    for name in ("rpm", "tpm", "concurrency", "max_cost"):
        value = getattr(options, name)
        if value is not None and value <= 0:
            raise ExecuteError(f"--{name.replace('_', '-')} {value}: must be positive")
    return StreamSettings(
        rpm=options.rpm or provider.rpm,
        tpm=options.tpm or provider.tpm,
        concurrency=options.concurrency or provider.concurrency,
        max_cost=options.max_cost,
        off_peak=options.off_peak,
        grace_seconds=options.grace_seconds,
        chunk_size=options.chunk_size,
        compact_rows=options.compact_rows,
        compact_seconds=options.compact_seconds,
        retry=options.retry or RetryPolicy(),
        handle_signals=options.handle_signals,
    )


def _check_off_peak(job: Job, selection: Selection) -> None:
    from batchkit.execute.offpeak import offpeak_wait_seconds

    stages = selection.stages or list(job.stage_names)
    for model in sorted({job.stage(name).model for name in stages}):
        if offpeak_wait_seconds(job, model, datetime.now(UTC)) is None:
            raise ExecuteError(
                f"--off-peak: model {model} has no discount windows in the "
                f"[[prices]] of {job.path}; add windows or drop --off-peak"
            )


def plan_run(job: Job, selection: Selection) -> DryRun:
    """Return the pending count, its worst-case cost and the job's spend so far."""
    with connect(job) as connection:
        pending, max_cost = count_pending(connection, job, selection)
        row = connection.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM attempts"
        ).fetchone()
    return DryRun(pending, max_cost, float(row[0]) if row else 0.0)


def _stop_error(error: RunStoppingError, endpoint: Endpoint) -> RunStoppingError:
    if isinstance(error, AuthenticationError):
        return AuthenticationError(
            f"{error}; the provider at {endpoint.base_url} rejected the API key in "
            f"{endpoint.key_env}; check that variable (export it or set it in "
            "a git-ignored .env file) and rerun",
            http_status=error.http_status,
        )
    return type(error)(
        f"{error}; every request would fail the same way, so the run stopped "
        f"(base URL {endpoint.base_url})",
        http_status=error.http_status,
    )


def _check_prices(job: Job, selection: Selection) -> None:
    stages = selection.stages or list(job.stage_names)
    models = {job.stage(name).model for name in stages}
    check_budget_prices(job, models, datetime.now(UTC))


def _summarise(
    runner: StreamRun, plan: DryRun, log_path: Path, began: float, recovered: int
) -> StreamSummary:
    return StreamSummary(
        run_id=runner.log.run_id,
        log_path=log_path,
        selected=plan.pending,
        ok=runner.counts.ok,
        failed=runner.counts.failed,
        cancelled=runner.counts.cancelled,
        attempts=runner.counts.attempts,
        retries=runner.counts.retries,
        spent_usd=runner.budget.spent,
        spent_total_usd=runner.budget.total,
        elapsed_seconds=time.monotonic() - began,
        recovered=recovered,
        stop_reason=runner.stop_reason,
        stop_message=runner.stop_message,
    )


def _raise_stop_error(runner: StreamRun, job: Job, endpoint: Endpoint) -> None:
    if isinstance(runner.fatal_error, OSError):
        raise ExecuteError(
            f"{job.responses_dir}: the response log could not be written "
            f"({runner.fatal_error}); every attempt logged before is saved, so "
            "fix the disk problem and rerun"
        ) from runner.fatal_error
    if runner.fatal_error is not None:
        raise runner.fatal_error
    if runner.stop_error is not None:
        raise _stop_error(runner.stop_error, endpoint)


def _execute(
    job: Job,
    selection: Selection,
    settings: StreamSettings,
    endpoint: Endpoint,
    progress: ExecuteProgress | None,
    log: ResponseLog,
) -> tuple[StreamRun, DryRun]:
    plan = plan_run(job, selection)
    if settings.max_cost is not None:
        _check_prices(job, selection)
    logger.info(
        "run %s: %s pending requests to %s; caps %s rpm, %s tpm, %s in flight",
        log.run_id,
        plan.pending,
        endpoint.base_url,
        settings.rpm,
        settings.tpm,
        settings.concurrency,
    )
    budget = Budget(settings.max_cost, plan.spent_usd)
    runner = StreamRun(
        job,
        selection,
        settings,
        endpoint,
        log,
        total=plan.pending,
        budget=budget,
        progress=progress,
    )
    asyncio.run(runner.run())
    return runner, plan


def run_stream(
    job: Job,
    selection: Selection,
    options: StreamOptions | None = None,
    progress: ExecuteProgress | None = None,
) -> StreamSummary:
    """Send the selected pending requests under the job's caps; return the summary.

    Raises the provider's error when it stops the run (401, 402, 404), after
    every attempt is written.
    """
    options = options or StreamOptions()
    settings = _settings(job, options)
    endpoint = resolve_endpoint(job, options.base_url)
    if settings.off_peak:
        _check_off_peak(job, selection)
    run_id = new_run_id()
    began = time.monotonic()
    with execute_lock(job), run_log(job, run_id) as log_path:
        recovered = recover(job)
        with ResponseLog(
            job,
            run_id,
            compact_rows=settings.compact_rows,
            compact_seconds=settings.compact_seconds,
        ) as log:
            runner, plan = _execute(job, selection, settings, endpoint, progress, log)
        # Judge the new results now, so status shows rejects without a load.
        with connect(job) as connection:
            refresh_verdicts(connection, job)
        summary = _summarise(runner, plan, log_path, began, recovered)
        for line in summary.lines():
            logger.info("%s", line)
    _raise_stop_error(runner, job, endpoint)
    return summary
