"""`batchkit prepare`: render the job's requests and write the batch files."""

from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    TaskID,
)
from rich.table import Table

from batchkit.cli.common import (
    DEFAULT_JOB,
    JobOption,
    QuietOption,
    progress_bar,
    stderr,
    stdout,
)
from batchkit.job.loader import load_job
from batchkit.prepare.estimate import PROJECTED_INSTRUCTION_TOKENS
from batchkit.prepare.run import PrepareSummary, prepare_job
from batchkit.prepare.tokens import LATIN_CHARS_PER_TOKEN, TOKENS_PER_CJK_CHAR


def prepare(
    job_path: JobOption = DEFAULT_JOB,
    stage: Annotated[
        list[str] | None,
        typer.Option("--stage", "-s", help="Render only this stage (repeatable)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            help="Render only the first N items of the items query (a count).",
        ),
    ] = None,
    no_files: Annotated[
        bool, typer.Option("--no-files", help="Do not write the JSONL batch files.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Render every stage's prompt for every item into the job database.

    Unchanged requests are kept, edited ones get a new version, and each
    stage's current requests are written as provider batch files. Example:

        batchkit prepare -j jobs/productmind/job.toml --limit 10
    """
    job = load_job(job_path)
    with progress_bar("{task.description}", quiet) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, rendered: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"render {stage}", total=total)
            bar.update(tasks[stage], completed=rendered)

        summary = prepare_job(
            job,
            stage_names=stage,
            limit=limit,
            write_files=not no_files,
            progress=report,
        )
    if not quiet:
        _print_summary(summary, str(job.requests_dir))


def _requests_table(summary: PrepareSummary) -> Table:
    table = Table(title="Requests per stage", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("stage")
    for column in ("new", "changed", "unchanged", "waiting"):
        table.add_column(column, justify="right")
    for stage, counts in summary.stages.items():
        table.add_row(
            stage,
            f"{counts.added:,}",
            f"{counts.changed:,}",
            f"{counts.unchanged:,}",
            f"{summary.waiting.get(stage, 0):,}",
        )
    return table


def _estimate_table(summary: PrepareSummary) -> Table:
    table = Table(title="Estimate per stage", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("stage")
    for column in ("requests", "prompt tokens", "max output tokens", "max cost USD"):
        table.add_column(column, justify="right")
    prompt = completion = 0
    cost = 0.0
    for estimate in summary.estimates:
        table.add_row(
            estimate.stage + (" *" if estimate.is_projected else ""),
            f"{estimate.requests:,}",
            f"{estimate.prompt_tokens:,}",
            f"{estimate.max_completion_tokens:,}",
            "no price"
            if estimate.max_cost_usd is None
            else f"{estimate.max_cost_usd:,.2f}",
        )
        prompt += estimate.prompt_tokens
        completion += estimate.max_completion_tokens
        cost += estimate.max_cost_usd or 0.0
    table.add_section()
    table.add_row("total", "", f"{prompt:,}", f"{completion:,}", f"{cost:,.2f}")
    return table


def _print_summary(summary: PrepareSummary, requests_dir: str) -> None:
    inputs = ", ".join(
        f"{name} {rows:,} rows" for name, rows in summary.input_rows.items()
    )
    stderr.print(f"inputs: {inputs}; items: {summary.items:,}")
    stdout.print(_requests_table(summary))
    stdout.print(_estimate_table(summary))
    notes = [
        f"Prompt tokens are estimated at {LATIN_CHARS_PER_TOKEN} characters per "
        f"token, and {TOKENS_PER_CJK_CHAR} tokens per CJK character.",
        "Max cost assumes no cache hits and every response at max_tokens, at "
        "today's price.",
    ]
    if any(estimate.is_projected for estimate in summary.estimates):
        notes.append(
            "* includes projected requests: each request of the dependency that "
            "is not rendered here yet counts as one, with a prompt of the "
            f"dependency's max_tokens plus {PROJECTED_INSTRUCTION_TOKENS} tokens."
        )
    unpriced = [e.stage for e in summary.estimates if e.max_cost_usd is None]
    if unpriced:
        notes.append(
            "[yellow]warning:[/yellow] "
            + escape(
                f"no [[prices]] entry covers the model of {', '.join(unpriced)} "
                "today, so their cost is left out of the total and attempts get "
                "no cost; add a dated [[prices]] entry to the job file."
            )
        )
    retired = {stage: count for stage, count in summary.retired.items() if count}
    if retired:
        shown = ", ".join(f"{stage} {count:,}" for stage, count in retired.items())
        notes.append(
            f"Retired requests of items the query no longer yields: {shown}; "
            "execute will not send them."
        )
    for note in notes:
        stderr.print(note, highlight=False)
    _print_files(summary, requests_dir)


def _print_files(summary: PrepareSummary, requests_dir: str) -> None:
    for file_set in summary.files:
        if file_set.oversized:
            stderr.print(
                f"[yellow]warning:[/yellow] {len(file_set.oversized)} "
                f"{file_set.stage} requests exceed the batch file byte limit and "
                f"were left out of the files, e.g. {file_set.oversized[0]}; raise "
                "provider.batch.max_bytes or shorten the prompt"
            )
    written = sum(len(file_set.files) for file_set in summary.files)
    if written:
        stderr.print(f"batch files: {written} under {requests_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the prepare command to `app`."""
    app.command()(prepare)
