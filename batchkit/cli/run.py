"""`batchkit run`: prepare and execute in rounds until nothing changes, then load."""

from typing import Annotated

import typer

from batchkit.cli.common import DEFAULT_JOB, JobOption, QuietOption, stderr
from batchkit.cli.execute import report_stream_summary, run_stream_with_progress
from batchkit.cli.load import print_load_summary
from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, StreamSummary
from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.pipeline import DEFAULT_MAX_ROUNDS, run_pipeline


def run(
    job_path: JobOption = DEFAULT_JOB,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost", help="Stop before the job's spend could pass this many USD."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Provider base URL; overrides the job file."),
    ] = None,
    max_rounds: Annotated[
        int,
        typer.Option("--max-rounds", min=1, help="Most prepare → execute rounds."),
    ] = DEFAULT_MAX_ROUNDS,
    no_load: Annotated[
        bool, typer.Option("--no-load", help="Stop after the last round; do not load.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Loop prepare → execute until a round changes nothing, then load.

    Dependent stages (such as translations) render from the valid results of
    the stage they depend on, so each round renders what the last one made
    possible. Example:

        batchkit run -j jobs/productmind/job.toml --max-cost 50
    """
    if max_cost is not None and max_cost <= 0:
        raise typer.BadParameter(
            f"{max_cost:g}: must be a positive number of USD", param_hint="--max-cost"
        )
    job = load_job(job_path)
    options = StreamOptions(base_url=base_url, max_cost=max_cost)

    def execute_round(job: Job, selection: Selection) -> StreamSummary:
        summary = run_stream_with_progress(job, selection, options, quiet)
        report_stream_summary(summary, job, quiet)
        return summary

    def announce(text: str) -> None:
        if not quiet:
            stderr.print(f"[bold]==> {text}[/bold]", highlight=False)

    summary = run_pipeline(
        job,
        options=options,
        execute=execute_round,
        announce=announce,
        max_rounds=max_rounds,
        load=not no_load,
    )
    if summary.stop_reason:
        stderr.print(f"[yellow]{summary.stop_reason}[/yellow]", highlight=False)
    if summary.load is not None and not quiet:
        print_load_summary(summary.load)


def register(app: typer.Typer) -> None:
    """Add the run command to `app`."""
    app.command()(run)
