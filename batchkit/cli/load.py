"""`batchkit load` and `batchkit schema`: upsert valid results, print the target DDL."""

from typing import Annotated

import typer
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
from batchkit.load.run import LoadSummary, load_results, target_schema


def load(
    job_path: JobOption = DEFAULT_JOB,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="postgres, rest or parquet. Default: load.target, else postgres "
            "when the database URL variable is set, else parquet.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Count inserts, updates, unchanged (resent with --full) and "
            "rejected rows per stage; write nothing.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Send every valid result again and rewrite its row in the table, "
            "also rows the ledger records as loaded. Use it after the table was "
            "emptied or edited outside batchkit.",
        ),
    ] = False,
    create_table: Annotated[
        bool,
        typer.Option(
            "--create-table",
            help="Create the target table and its unique index if missing "
            "(postgres target only).",
        ),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Validate results and upsert the valid ones into the target table.

    Rejected results stay in the job database with their reasons; `execute
    --only-failed` sends them again. Only new and changed rows are sent,
    unless --full is given.
    Example:

        SUPABASE_DB_URL=postgresql://... batchkit load -j jobs/productmind/job.toml
    """
    job = load_job(job_path)
    with progress_bar("load", quiet) as bar:
        task = bar.add_task("load", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = load_results(
            job,
            target=target,
            dry_run=dry_run,
            full=full,
            create_table=create_table,
            progress=report,
        )
    if not quiet:
        print_load_summary(summary)


def print_load_summary(summary: LoadSummary) -> None:
    """Print what a load planned and sent, per stage, with the reject reasons."""
    _print_stage_table(summary)
    for stage, reasons in summary.reject_reasons.items():
        shown = ", ".join(f"{name} {count:,}" for name, count in reasons.items())
        stderr.print(f"rejected {stage}: {shown}")
    if summary.nul_removed:
        stderr.print(f"removed {summary.nul_removed:,} NUL characters (U+0000)")

    if summary.kind == "parquet":
        _print_export(summary)
        return
    if summary.full:
        stderr.print(
            "--full: every valid result is sent again and rewrites its row, also "
            "where the ledger records it as loaded. The counts per stage compare "
            "with the ledger, not with the table"
        )
    if summary.dry_run:
        stderr.print(f"{summary.rows_planned:,} {summary.layout} rows would be sent")
        return

    written = (
        f"{summary.rows_inserted:,} inserted, {summary.rows_updated:,} updated"
        if summary.rows_inserted is not None and summary.rows_updated is not None
        else "counts not reported over REST"
    )
    stderr.print(
        f"sent {summary.rows_sent:,} rows in {summary.chunks:,} chunks "
        f"({written}; {summary.retries} retries, {summary.splits} splits) "
        f"in {summary.seconds:.1f} s"
    )


def _print_stage_table(summary: LoadSummary) -> None:
    title = "planned (dry run)" if summary.dry_run else "loaded"
    if summary.kind == "parquet":
        title = "export planned (dry run)" if summary.dry_run else "exported"
    table = Table(title=f"{title}: {summary.target}", title_justify="left")
    columns = _stage_columns(summary)
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, counts in summary.stages.items():
        values = [getattr(counts, column) for column in columns[1:]]
        table.add_row(stage, *(f"{value:,}" for value in values))
    stdout.print(table)


def _stage_columns(summary: LoadSummary) -> tuple[str, ...]:
    """Return the per-stage table's columns, named as StageCounts fields."""
    if summary.kind == "parquet":
        return ("stage", "exported", "rejected")
    if summary.full:
        return ("stage", "inserts", "updates", "resent", "rejected")
    return ("stage", "inserts", "updates", "unchanged", "rejected")


def _print_export(summary: LoadSummary) -> None:
    """Print what the Parquet export wrote and how to load into a database instead."""
    rows = f"{summary.rows_planned:,} {summary.layout} rows"
    if summary.dry_run:
        stderr.print(
            f"{rows} would be written to {summary.target}, replacing the whole file"
        )
        return
    stderr.print(
        f"wrote {rows} to {summary.export_path}; the export is rewritten in full "
        "on every load and holds every valid result"
    )
    stderr.print(
        f"To load into PostgreSQL, set {summary.database_url_env} (the database "
        f"URL), or {summary.supabase_url_env} and {summary.supabase_key_env} with "
        'target = "rest" in the \\[load] table for Supabase\'s REST API, and run '
        "load again",
        highlight=False,
    )


def schema(job_path: JobOption = DEFAULT_JOB) -> None:
    """Print the target table's CREATE TABLE and unique index as SQL.

    Column types of the key and item columns come from the prepared items.
    Paste the output into a Supabase migration, or run `load --create-table`.
    Example:

        batchkit schema -j jobs/productmind/job.toml > migration.sql
    """
    job = load_job(job_path)
    stdout.out(target_schema(job), end="", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the load and schema commands to `app`."""
    app.command()(load)
    app.command()(schema)
