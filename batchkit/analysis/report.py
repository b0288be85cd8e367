"""The HTML report: one self-contained file with the status table and charts.

plotly.js is embedded once in the page head, so the file opens offline and
loads nothing from a CDN.
"""

import html
import logging
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import plotly.io
import plotly.offline

from batchkit.analysis import charts
from batchkit.analysis.errors import missing_views_error
from batchkit.analysis.live import include_wal
from batchkit.analysis.status import (
    LOCK_WAIT_SECONDS,
    RunStatus,
    format_usd,
    read_status,
)
from batchkit.job.model import Job
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 40
# Time buckets of the throughput charts: the smallest that keeps a chart
# under MAX_BUCKETS bars.
BUCKET_SECONDS = (60, 300, 900, 3_600, 4 * 3_600, 86_400)
MAX_BUCKETS = 240

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; }
.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: bold; border-top: 2px solid #999; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.chart { border: 1px solid #eee; border-radius: 6px; padding: 4px; min-width: 0;
         overflow: hidden; }
@media (max-width: 1000px) { .charts { grid-template-columns: minmax(0, 1fr); } }
"""


def write_report(job: Job, path: Path) -> Path:
    """Write the run's HTML report to `path` and return the path."""
    status = read_status(job)
    with connect(job, read_only=True, wait=LOCK_WAIT_SECONDS) as connection:
        try:
            include_wal(connection, job)
            figures = build_figures(connection, job)
            latency = connection.execute(
                "SELECT stage, ok_attempts, p50_ms, p95_ms, p99_ms FROM latency"
            ).fetchall()
        except duckdb.CatalogException as error:
            raise missing_views_error(job.db_path, job.path, error) from error
    page = render_page(status, figures, latency)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    logger.info("wrote the report of %s to %s", job.name, path)
    return path


def build_figures(connection: duckdb.DuckDBPyConnection, job: Job) -> list[go.Figure]:
    """Build every chart of the report from the job database."""
    bucket = _bucket_seconds(connection)
    figures = [
        charts.throughput_chart(_throughput_rows(connection, bucket), bucket),
        charts.errors_chart(_error_rows(connection, bucket), bucket),
        _latency_figure(connection),
        charts.stacked_bar_chart(
            "Cost by stage: spent and estimated max (USD)",
            "stage",
            "USD",
            _stage_cost_rows(connection),
            barmode="group",
        ),
        charts.stacked_bar_chart(
            "Cost by day (USD, UTC days)",
            "day",
            "USD",
            # Days as text, so that plotly draws one category per day instead
            # of a time axis with hours.
            connection.execute(
                "SELECT stage, CAST(day AS VARCHAR) AS day, sum(cost_usd) FROM costs "
                "GROUP BY ALL ORDER BY day"
            ).fetchall(),
            category_axis=True,
        ),
        charts.stacked_bar_chart(
            "Rejects by reason",
            "reason",
            "results",
            connection.execute(
                "SELECT stage, reason_name, count(*) FROM rejects GROUP BY ALL "
                "ORDER BY 3 DESC"
            ).fetchall(),
        ),
    ]
    # One pass over `results` for every stage, because each pass sorts every
    # attempt with its content. A read-only connection may still create
    # temporary tables.
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE report_lengths AS "
        "SELECT stage, length(content) AS chars FROM results WHERE content IS NOT NULL"
    )
    figures.extend(_length_figure(connection, job, stage) for stage in job.stage_names)
    return figures


def _bucket_seconds(connection: duckdb.DuckDBPyConnection) -> int:
    row = connection.execute(
        "SELECT epoch(max(finished_at)) - epoch(min(finished_at)) FROM attempts"
    ).fetchone()
    span = row[0] if row and row[0] is not None else 0.0
    for seconds in BUCKET_SECONDS:
        if span / seconds <= MAX_BUCKETS:
            return seconds
    return BUCKET_SECONDS[-1]


def _bucket_sql(seconds: int) -> str:
    return f"to_timestamp(epoch_us(finished_at) // {seconds * 1_000_000} * {seconds})"


def _throughput_rows(
    connection: duckdb.DuckDBPyConnection, seconds: int
) -> list[tuple[Any, ...]]:
    return connection.execute(
        f"""
        SELECT status, {_bucket_sql(seconds)} AS bucket, count(*)
        FROM attempts WHERE finished_at IS NOT NULL
        GROUP BY ALL ORDER BY bucket
        """
    ).fetchall()


def _error_rows(
    connection: duckdb.DuckDBPyConnection, seconds: int
) -> list[tuple[Any, ...]]:
    return connection.execute(
        f"""
        SELECT coalesce(error_type, 'unknown'), {_bucket_sql(seconds)} AS bucket,
               count(*)
        FROM attempts WHERE status <> 'ok' AND finished_at IS NOT NULL
        GROUP BY ALL ORDER BY bucket
        """
    ).fetchall()


def _stage_cost_rows(connection: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        "SELECT stage, cost_usd, estimated_max_cost_usd FROM estimate_vs_actual"
    ).fetchall()
    spent = [("spent", stage, cost) for stage, cost, _ in rows]
    estimated = [
        ("estimated max", stage, estimate)
        for stage, _, estimate in rows
        if estimate is not None
    ]
    return spent + estimated


def _binned(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    parameters: Sequence[Any] = (),
) -> tuple[list[tuple[Any, ...]], float]:
    """Bin `source` (columns series, value) into HISTOGRAM_BINS equal bins.

    Returns (series, bin centre, count) rows and the bin width.
    """
    bounds = connection.execute(
        f"SELECT min(value), max(value) FROM ({source})", list(parameters)
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return [], 1.0
    low, high = float(bounds[0]), float(bounds[1])
    width = max(high - low, 1.0) / HISTOGRAM_BINS
    rows = connection.execute(
        f"""
        SELECT series,
               ? + (least(floor((value - ?) / ?), ?) + 0.5) * ? AS centre,
               count(*)
        FROM ({source})
        GROUP BY ALL ORDER BY series, centre
        """,
        [low, low, width, HISTOGRAM_BINS - 1, width, *parameters],
    ).fetchall()
    return rows, width


def _latency_figure(connection: duckdb.DuckDBPyConnection) -> go.Figure:
    rows, width = _binned(
        connection,
        "SELECT stage AS series, latency_ms / 1000 AS value FROM attempts "
        "WHERE status = 'ok' AND latency_ms IS NOT NULL",
    )
    return charts.histogram_chart(
        "Latency of ok attempts (seconds)", "seconds", rows, width
    )


def _length_figure(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: str
) -> go.Figure:
    rows, width = _binned(
        connection,
        "SELECT 'characters' AS series, chars AS value FROM report_lengths "
        "WHERE stage = ?",
        [stage],
    )
    rules = job.stage(stage).validation
    limits = [
        (label, value)
        for label, value in (("min", rules.min_chars), ("max", rules.max_chars))
        if value is not None
    ]
    return charts.histogram_chart(
        f"Output length of {stage} results against its limits",
        "characters",
        rows,
        width,
        limits,
    )


def render_page(
    status: RunStatus, figures: list[go.Figure], latency: list[tuple[Any, ...]]
) -> str:
    """Return the whole HTML page: plotly.js, the tables and every figure."""
    divs = "\n".join(
        '<div class="chart">'
        + plotly.io.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            default_width="100%",
            config={"displaylogo": False, "responsive": True},
        )
        + "</div>"
        for figure in figures
    )
    title = html.escape(f"batchkit report: {status.job}")
    generated = f"{status.generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{STYLE}</style>
<script>{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
<h1>{title}</h1>
<p class="meta">generated {generated}</p>
{_status_table(status)}
{_summary_lines(status)}
{_latency_table(latency)}
<div class="charts">
{divs}
</div>
</body>
</html>
"""


def _cells(values: Sequence[Any], tag: str = "td") -> str:
    return "".join(f"<{tag}>{html.escape(str(value))}</{tag}>" for value in values)


def _status_table(status: RunStatus) -> str:
    header = (
        "stage",
        "total",
        "pending",
        "ok",
        "failed",
        "rejected",
        "loaded",
        "spent USD",
        "est. max USD",
    )
    rows = []
    for stage in [*status.stages, status.totals]:
        estimate = "-" if stage.estimate_usd is None else format_usd(stage.estimate_usd)
        values = (
            stage.stage,
            *(
                f"{value:,}"
                for value in (
                    stage.total,
                    stage.pending,
                    stage.ok,
                    stage.failed,
                    stage.rejected,
                    stage.loaded,
                )
            ),
            format_usd(stage.spend_usd),
            estimate,
        )
        css = ' class="total"' if stage is status.totals else ""
        rows.append(f"<tr{css}>{_cells(values)}</tr>")
    return (
        '<table id="status"><thead><tr>'
        + _cells(header, "th")
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _summary_lines(status: RunStatus) -> str:
    span = status.rate_seconds
    if span < status.window_minutes * 60:
        # The run is younger than the window, so the rate covers only its time.
        covered = (
            f"{span:.0f} seconds (since the first attempt in the "
            f"{status.window_minutes:g}-minute window)"
        )
    else:
        covered = f"{status.window_minutes:g} minutes"
    lines = [
        f"{status.rate_per_minute:,.1f} attempts per minute over the last "
        f"{covered}; {status.remaining:,} requests left."
    ]
    if status.last_finished_at is not None:
        lines.append(
            f"Last attempt finished {status.last_finished_at:%Y-%m-%d %H:%M} UTC."
        )
    for error in status.errors:
        lines.append(f"Failed attempts of type {error.error_type}: {error.attempts:,}.")
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _latency_table(latency: list[tuple[Any, ...]]) -> str:
    if not latency:
        return ""
    rows = "".join(
        "<tr>"
        + _cells(
            (stage, f"{count:,}", *(f"{value / 1000:,.2f}" for value in quantiles))
        )
        + "</tr>"
        for stage, count, *quantiles in latency
    )
    header = _cells(("stage", "ok attempts", "p50 s", "p95 s", "p99 s"), "th")
    return (
        f'<table id="latency"><thead><tr>{header}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
