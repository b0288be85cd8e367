"""`batchkit execute`: send pending requests in stream or batch mode."""

import shlex
import sys
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from batchkit.cli.common import (
    DEFAULT_JOB,
    JobOption,
    QuietOption,
    format_duration,
    stderr,
    stdout,
)
from batchkit.execute.progress import RunSnapshot
from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, StreamSummary, plan_run, run_stream
from batchkit.job.loader import load_job
from batchkit.job.model import Job

PLAIN_EVERY_SECONDS = 15.0
EXIT_INTERRUPTED = 130


class Mode(StrEnum):
    """The transport to the provider: chat completions or batch files."""

    stream = "stream"
    batch = "batch"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"


def describe(snapshot: RunSnapshot) -> str:
    """Return one line about a run's state for people."""
    parts = [
        f"ok {snapshot.ok:,}",
        f"failed {snapshot.failed:,}",
        f"retrying {snapshot.retrying:,}",
        f"in flight {snapshot.in_flight}/{snapshot.concurrency_cap}",
        f"{snapshot.requests_per_minute:,}/{snapshot.rpm_cap:,.0f} rpm",
    ]
    if snapshot.tpm_cap is not None:
        parts.append(f"{snapshot.tokens_per_minute:,}/{snapshot.tpm_cap:,.0f} tpm")
    spend = f"${snapshot.spent_usd:,.4f}"
    if snapshot.budget_usd is not None:
        spend += f" (job budget ${snapshot.budget_usd:,.2f})"
    parts.append(spend)
    parts.append(f"ETA {_duration(snapshot.eta_seconds)}")
    if snapshot.waiting_reason:
        parts.append(
            f"waiting {_duration(snapshot.waiting_seconds)} for the "
            f"{snapshot.waiting_reason}"
        )
    if snapshot.stopping:
        parts.append(f"stopping ({snapshot.stopping}), finishing requests in flight")
    return " · ".join(parts)


class BarProgress:
    """A rich progress bar on stderr with the run's counters beside it."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("execute", total=None, info="")

    def update(self, snapshot: RunSnapshot) -> None:
        """Redraw the bar from `snapshot`."""
        self.bar.update(
            self.task,
            completed=snapshot.done,
            total=snapshot.total,
            info=describe(snapshot),
        )


class PlainProgress:
    """One plain line on stderr every PLAIN_EVERY_SECONDS, for logs and pipes."""

    def __init__(self) -> None:
        self.last = 0.0

    def update(self, snapshot: RunSnapshot) -> None:
        """Print `snapshot` if the last line is old enough."""
        now = time.monotonic()
        if now - self.last < PLAIN_EVERY_SECONDS:
            return
        self.last = now
        stderr.print(
            f"{snapshot.done:,}/{snapshot.total:,} done · {describe(snapshot)}",
            highlight=False,
            soft_wrap=True,
        )


def run_stream_with_progress(
    job: Job, selection: Selection, options: StreamOptions, quiet: bool
) -> StreamSummary:
    """Run stream execute with a progress bar, plain lines, or nothing if quiet."""
    if quiet:
        return run_stream(job, selection, options)
    if not stderr.is_terminal:
        return run_stream(job, selection, options, PlainProgress())
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        console=stderr,
        transient=True,
    ) as bar:
        return run_stream(job, selection, options, BarProgress(bar))


def _run_batch(
    job: Job,
    selection: Selection,
    base_url: str | None,
    poll: bool,
    wait: bool,
    cancel: bool,
) -> None:
    from batchkit.execute.batch import BatchSummary, execute_batch

    def show_round(summary: BatchSummary) -> None:
        # --wait can poll for hours; show each round's state as it comes.
        stderr.print(f"{time.strftime('%H:%M:%S')} polled:", highlight=False)
        for line in summary.lines():
            stderr.print(f"  {line}", highlight=False, soft_wrap=True)

    summary = execute_batch(
        job,
        selection,
        base_url=base_url,
        poll_only=poll,
        wait=wait,
        cancel=cancel,
        progress=show_round if wait else None,
    )
    for line in summary.lines():
        stdout.print(line, highlight=False, soft_wrap=True)


def report_stream_summary(summary: StreamSummary, job: Job, quiet: bool) -> None:
    """Print a run's summary; exit 130 after Ctrl-C and 1 after a budget stop."""
    # With --quiet only the result line, the first of the summary, is printed.
    lines = summary.lines()[:1] if quiet else summary.lines()
    for line in lines:
        stderr.print(line, highlight=False, soft_wrap=True)
    if summary.stop_reason == "interrupted":
        command = "batchkit " + shlex.join(sys.argv[1:])
        stderr.print(
            f"Interrupted. Every finished attempt is saved; run the same command "
            f"again ({command}) to send the rest.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    if summary.stop_reason == "budget":
        stderr.print(
            f"[red]Stopped:[/red] {summary.stop_message}; raise --max-cost to send "
            "the rest.",
            highlight=False,
        )
        sys.exit(1)


def _warn_ignored(stream_only: Mapping[str, object]) -> None:
    for name, value in stream_only.items():
        if value is not None:
            stderr.print(f"warning: {name} applies to --mode stream; ignored")


def _reject_batch_flags(flags: dict[str, bool]) -> None:
    for name, is_set in flags.items():
        if is_set:
            raise typer.BadParameter(
                f"{name} applies to provider batches; add --mode batch",
                param_hint=name,
            )


def execute(
    job_path: JobOption = DEFAULT_JOB,
    stage: Annotated[
        list[str] | None,
        typer.Option("--stage", "-s", help="Send only this stage (repeatable)."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="SQL condition over the requests view, e.g. \"item_key LIKE '7:%'\".",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Send at most N requests."),
    ] = None,
    only_failed: Annotated[
        bool,
        typer.Option(
            "--only-failed",
            help="Resend only requests whose attempts failed or whose result was "
            "rejected by validation, whatever their attempt count.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the count and worst-case cost; send nothing."
        ),
    ] = False,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0.0,
            help="Budget in USD for the job's total spend, earlier runs included; "
            "no request is sent that could exceed it.",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Provider base URL, e.g. http://127.0.0.1:8000/v1. Default: "
            "$BATCHKIT_BASE_URL, else provider.base_url.",
        ),
    ] = None,
    rpm: Annotated[
        int | None,
        typer.Option("--rpm", min=1, help="Cap in requests per minute."),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(
            "--tpm",
            min=1,
            help="Cap in tokens per minute (prompt estimate + max_tokens).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Cap on requests in flight."),
    ] = None,
    off_peak: Annotated[
        bool,
        typer.Option(
            "--off-peak",
            help="Send only inside the models' discount price windows; wait "
            "outside them.",
        ),
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0.0,
            help="Seconds to wait for requests in flight after Ctrl-C.",
        ),
    ] = 30.0,
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="stream: chat completions under the caps; batch: provider "
            "batch files (about half price, up to 24 h).",
        ),
    ] = Mode.stream,
    poll: Annotated[
        bool,
        typer.Option(
            "--poll", help="Batch mode: check and ingest batches, create none."
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Batch mode: poll until every batch has ended."),
    ] = False,
    cancel: Annotated[
        bool,
        typer.Option("--cancel", help="Batch mode: cancel the job's live batches."),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Send the job's pending requests to the provider and log every attempt.

    Requests with an ok attempt are skipped, so rerunning resumes where the
    last run stopped. Ctrl-C stops sending, waits for the requests in flight
    and saves them; a second Ctrl-C cancels those too. Example:

        batchkit execute -j jobs/productmind/job.toml --stage doc_en --limit 20
    """
    job = load_job(job_path)
    selection = Selection(
        stages=stage, where=where, limit=limit, only_failed=only_failed
    )
    if dry_run:
        plan = plan_run(job, selection)
        cost = "no price" if plan.max_cost_usd is None else _usd(plan.max_cost_usd)
        stdout.print(
            f"{plan.pending:,} requests pending; worst-case cost {cost} "
            f"(spent so far ${plan.spent_usd:,.4f})",
            highlight=False,
        )
        return
    if mode is Mode.batch:
        stream_only = {
            "--rpm": rpm,
            "--tpm": tpm,
            "--concurrency": concurrency,
            "--max-cost": max_cost,
            "--off-peak": off_peak or None,
        }
        _warn_ignored(stream_only)
        _run_batch(job, selection, base_url, poll, wait, cancel)
        return
    _reject_batch_flags({"--poll": poll, "--wait": wait, "--cancel": cancel})
    options = StreamOptions(
        base_url=base_url,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        max_cost=max_cost,
        off_peak=off_peak,
        grace_seconds=grace,
    )
    summary = run_stream_with_progress(job, selection, options, quiet)
    report_stream_summary(summary, job, quiet)


def register(app: typer.Typer) -> None:
    """Add the execute command to `app`."""
    app.command()(execute)
