"""`batchkit prepare`: render the job's requests and write the batch files."""

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from batchkit.cli.common import DEFAULT_JOB, JobOption, QuietOption, stderr, stdout
from batchkit.job.loader import load_job
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
            "--limit", "-n", min=1, help="Render only the first N items of the query."
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
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr,
        disable=quiet or not stderr.is_terminal,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def report(stage_name: str, done: int, total: int) -> None:
            if stage_name not in tasks:
                tasks[stage_name] = bar.add_task(f"render {stage_name}", total=total)
            bar.update(tasks[stage_name], completed=done)

        summary = prepare_job(
            job,
            stage_names=stage,
            limit=limit,
            write_files=not no_files,
            progress=report,
        )
    if not quiet:
        _print_summary(summary, str(job.requests_dir))


def _print_summary(summary: PrepareSummary, requests_dir: str) -> None:
    inputs = ", ".join(
        f"{name} {rows:,} rows" for name, rows in summary.input_rows.items()
    )
    stderr.print(f"inputs: {inputs}; items: {summary.items:,}")
    table = Table(title="requests and estimate per stage", title_justify="left")
    for column in (
        "stage",
        "new",
        "changed",
        "same",
        "waiting",
        "requests",
        "prompt tok",
        "max out tok",
        "max USD",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    totals = [0, 0, 0.0]
    for estimate in summary.estimates:
        counts = summary.stages.get(estimate.stage)
        cost = estimate.max_cost_usd
        name = estimate.stage + (" (projected)" if estimate.is_projected else "")
        table.add_row(
            name,
            f"{counts.added:,}" if counts else "-",
            f"{counts.changed:,}" if counts else "-",
            f"{counts.unchanged:,}" if counts else "-",
            f"{summary.waiting.get(estimate.stage, 0):,}",
            f"{estimate.requests:,}",
            f"{estimate.prompt_tokens:,}",
            f"{estimate.max_completion_tokens:,}",
            "no price" if cost is None else f"{cost:,.2f}",
        )
        totals[0] += estimate.prompt_tokens
        totals[1] += estimate.max_completion_tokens
        totals[2] += cost or 0.0
    table.add_row(
        "total",
        "",
        "",
        "",
        "",
        "",
        f"{totals[0]:,}",
        f"{totals[1]:,}",
        f"{totals[2]:,.2f}",
        style="bold",
    )
    stdout.print(table)
    stderr.print(
        f"Prompt tokens are estimated at {LATIN_CHARS_PER_TOKEN} Latin characters per "
        f"token and {TOKENS_PER_CJK_CHAR} tokens per CJK character; max cost assumes "
        "no cache hits and every response at max_tokens, at today's price."
    )
    for file_set in summary.files:
        if file_set.oversized:
            stderr.print(
                f"[yellow]warning:[/yellow] {len(file_set.oversized)} {file_set.stage} "
                f"requests exceed the batch file byte limit and were left out, "
                f"e.g. {file_set.oversized[0]}"
            )
    written = sum(len(f.files) for f in summary.files)
    if written:
        stderr.print(f"batch files: {written} under {requests_dir}")


def register(app: typer.Typer) -> None:
    """Add the prepare command to `app`."""
    app.command()(prepare)
