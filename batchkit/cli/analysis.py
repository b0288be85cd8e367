"""`batchkit status`, `batchkit sql` and `batchkit report`: look at a run."""

from datetime import UTC
from enum import StrEnum
from pathlib import Path
from time import sleep
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchkit.analysis.query import (
    QueryResult,
    RelationInfo,
    format_cell,
    format_csv,
    format_json,
    list_tables,
    list_views,
    run_query,
)
from batchkit.analysis.status import (
    DEFAULT_WINDOW_MINUTES,
    RunStatus,
    format_usd,
    read_status,
)
from batchkit.cli.common import (
    DEFAULT_JOB,
    JobOption,
    format_duration,
    stderr,
    stdout,
)
from batchkit.job.loader import load_job

COUNT_COLUMNS = ("total", "pending", "ok", "failed", "rejected", "loaded")


class OutputFormat(StrEnum):
    """Output formats of `batchkit sql`."""

    table = "table"
    csv = "csv"
    json = "json"


def status(
    job_path: JobOption = DEFAULT_JOB,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the status as JSON for scripts.")
    ] = False,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            "-w",
            min=0.1,
            help="Minutes of recent attempts that set the rate and the ETA.",
        ),
    ] = DEFAULT_WINDOW_MINUTES,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            min=1.0,
            help="Print the status again every this many seconds until Ctrl-C.",
        ),
    ] = None,
) -> None:
    """Show progress per stage, spend against the estimate, rate, ETA and errors.

    Reads the job database without writing, so it works while execute runs.
    Example:

        batchkit status -j jobs/productmind/job.toml --watch 10
    """
    job = load_job(job_path)
    while True:
        run = read_status(job, window_minutes=window)
        if as_json:
            stdout.out(orjson.dumps(run.to_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            if watch is not None and stdout.is_terminal:
                stdout.clear()
            print_status(run, stdout)
        if watch is None:
            return
        sleep(watch)


def print_status(run: RunStatus, console: Console) -> None:
    """Print the status tables and lines so that they fit 80 columns.

    Counts, amounts and error types never wrap. Only the stage names, the last
    error message and the batch ids give way on a narrow console: a stage name
    or batch id folds onto a second line and the message ends with an ellipsis.
    """
    console.print(_stages_table(run))
    console.print(_spend_table(run))
    console.print(_spend_line(run), highlight=False)
    console.print(_rate_line(run), highlight=False)
    if run.uncompacted_attempts:
        console.print(
            f"{run.uncompacted_attempts:,} attempts were read from execute's "
            "write-ahead log (not in Parquet yet).",
            highlight=False,
        )
    if run.totals.unchecked:
        console.print(
            f"{run.totals.unchecked:,} ok results are not checked yet; "
            "`batchkit load` checks them.",
            highlight=False,
        )
    if run.errors:
        console.print(_errors_table(run))
    if run.batches:
        console.print(_batches_table(run))


def _stages_table(run: RunStatus) -> Table:
    table = Table(title=f"{run.job}: requests by status", title_justify="left")
    # The stage name folds onto more lines when the counts need the room.
    # NOTE: on 80 columns the counts fit while each has at most 9 characters
    # (below 10,000,000). Wider counts make rich crop the table's right edge.
    table.add_column("stage", overflow="fold")
    for name in COUNT_COLUMNS:
        table.add_column(name, justify="right", no_wrap=True)
    for row in [*run.stages, run.totals]:
        table.add_row(
            row.stage,
            *(f"{getattr(row, name):,}" for name in COUNT_COLUMNS),
            style="bold" if row is run.totals else None,
        )
    return table


def _spend_table(run: RunStatus) -> Table:
    table = Table(title="spend by stage", title_justify="left")
    table.add_column("stage", overflow="fold")
    for name in ("spent USD", "est. max USD", "spent share"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in [*run.stages, run.totals]:
        estimate = row.estimate_usd
        table.add_row(
            row.stage,
            format_usd(row.spend_usd),
            "-" if estimate is None else format_usd(estimate),
            f"{row.spend_usd / estimate:.0%}" if estimate else "-",
            style="bold" if row is run.totals else None,
        )
    return table


def _spend_line(run: RunStatus) -> str:
    spent = run.totals.spend_usd
    estimate = run.totals.estimate_usd
    if not estimate:
        return f"spend: {spent:,.4f} USD (no estimate recorded)"
    return (
        f"spend: {spent:,.4f} USD of the estimated max {estimate:,.4f} USD "
        f"({spent / estimate:.0%})"
    )


def _rate_line(run: RunStatus) -> str:
    span = run.rate_seconds
    rate = f"rate: {run.rate_per_minute:,.1f} attempts/min over the last "
    if span < run.window_minutes * 60:
        # The run is younger than the window, so the rate covers only its time.
        rate += (
            f"{format_duration(span)} (since the first attempt in the "
            f"{run.window_minutes:g} min window)"
        )
    else:
        rate += f"{run.window_minutes:g} min"
    if run.remaining == 0:
        return f"{rate}; nothing left to send"
    eta = run.eta_seconds
    if eta is None:
        last = run.last_finished_at
        seen = (
            "no attempt yet"
            if last is None
            else f"last attempt {last:%Y-%m-%d %H:%M} UTC"
        )
        return f"{rate}; {run.remaining:,} requests left, no ETA ({seen})"
    return f"{rate}; {run.remaining:,} requests left, ETA {format_duration(eta)}"


def _errors_table(run: RunStatus) -> Table:
    table = Table(title="failed attempts by error type", title_justify="left")
    table.add_column("error type", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column(f"last {run.window_minutes:g} min", justify="right", no_wrap=True)
    # The only column that may shrink: each message stays on one line and ends
    # with an ellipsis where the console is too narrow.
    table.add_column("last message", overflow="ellipsis", max_width=60)
    for error in run.errors:
        table.add_row(
            error.error_type,
            f"{error.attempts:,}",
            f"{error.recent_attempts:,}",
            Text(error.last_message or "", no_wrap=True, overflow="ellipsis"),
        )
    return table


def _batches_table(run: RunStatus) -> Table:
    table = Table(title="live provider batches", title_justify="left")
    # A batch id folds onto more lines rather than lose characters.
    table.add_column("batch id", overflow="fold")
    table.add_column("status", no_wrap=True)
    for name in ("completed", "failed", "created UTC"):
        table.add_column(name, justify="right", no_wrap=True)
    for batch in run.batches:
        completed = (
            "-" if batch.completed_count is None else f"{batch.completed_count:,}"
        )
        table.add_row(
            batch.batch_id,
            batch.status,
            f"{completed} of {batch.request_count:,}",
            "-" if batch.failed_count is None else f"{batch.failed_count:,}",
            f"{batch.created_at.astimezone(UTC):%m-%d %H:%M}",
        )
    return table


def sql(
    query: Annotated[
        str | None,
        typer.Argument(
            help="The SQL query. Without it, print how to open the database and "
            "list the views and tables."
        ),
    ] = None,
    job_path: JobOption = DEFAULT_JOB,
    output: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="Output format: table, csv or json."),
    ] = OutputFormat.table,
) -> None:
    """Run one SQL query on a read-only connection to the job database.

    The query cannot change the database, but DuckDB statements such as
    COPY ... TO still write files. Example:

        batchkit sql -j jobs/productmind/job.toml "SELECT * FROM progress"
    """
    job = load_job(job_path)
    if query is None:
        _print_guide(job.db_path, job.path)
        _print_relations("views:", list_views(job))
        _print_relations("tables:", list_tables(job))
        stdout.print(
            "items.item is the item as JSON, for example "
            f"item->>'{job.items.key[0]}'; join it with USING (item_key).",
            highlight=False,
            soft_wrap=True,
        )
        return
    result = run_query(job, query)
    if result.uncompacted_attempts:
        stderr.print(
            f"{result.uncompacted_attempts:,} attempts were read from execute's "
            "write-ahead log (not in Parquet yet).",
            highlight=False,
        )
    if output is OutputFormat.csv:
        stdout.out(format_csv(result), end="")
    elif output is OutputFormat.json:
        stdout.out(format_json(result))
    else:
        stdout.print(_result_table(result))
        stderr.print(f"{len(result.rows):,} rows", highlight=False)


def _print_guide(db_path: Path, job_path: Path) -> None:
    stdout.print(
        f"database: {db_path}\n"
        f'query it:  batchkit sql -j {job_path} "SELECT * FROM progress"\n'
        f"or with the duckdb shell (while no batchkit command writes):\n"
        f"  duckdb -readonly {db_path}\n"
        "or from Python:\n"
        f"  python -c \"import duckdb; print(duckdb.connect('{db_path}', "
        "read_only=True).sql('FROM progress'))\"",
        highlight=False,
        soft_wrap=True,
    )


def _print_relations(title: str, relations: list[RelationInfo]) -> None:
    stdout.print(title, highlight=False)
    for relation in relations:
        stdout.print(
            f"  {relation.name}: {', '.join(relation.columns)}",
            highlight=False,
            soft_wrap=True,
        )


def _result_table(result: QueryResult) -> Table:
    # Text cells are shown as they are: rich would read "[link](url)" as
    # markup and ":x:" as an emoji code in plain strings.
    table = Table()
    for column in result.columns:
        table.add_column(Text(column), overflow="fold")
    for row in result.rows:
        table.add_row(*(Text(format_cell(value)) for value in row))
    return table


def report(
    job_path: JobOption = DEFAULT_JOB,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write. Default: report.html in the job's run folder.",
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report with charts of the run.

    The file embeds plotly.js, so it opens offline. Example:

        batchkit report -j jobs/productmind/job.toml -o /tmp/report.html
    """
    # plotly takes a sizeable share of a second to import, so only report pays it.
    from batchkit.analysis.report import write_report

    job = load_job(job_path)
    path = write_report(job, output or job.run_dir / "report.html")
    size = path.stat().st_size / 1_000_000
    stderr.print(f"report: {path} ({size:.1f} MB)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the status, sql and report commands to `app`."""
    app.command()(status)
    app.command()(sql)
    app.command()(report)
