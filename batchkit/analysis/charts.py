"""Plotly figures of the report, built from plain rows (no pandas needed)."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

HEIGHT = 360
LAYOUT: dict[str, Any] = {
    "height": HEIGHT,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "template": "plotly_white",
    "barmode": "stack",
    "legend": {
        "orientation": "h",
        "x": 1,
        "xanchor": "right",
        "y": 1.0,
        "yanchor": "bottom",
    },
}
STATUS_COLOURS = {"ok": "#2a9d8f", "failed": "#e76f51"}


def _figure(title: str, x_title: str, y_title: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title, xaxis_title=x_title, yaxis_title=y_title, **LAYOUT
    )
    return figure


def _add_empty_note(figure: go.Figure) -> go.Figure:
    figure.add_annotation(
        text="no data yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
    )
    return figure


def _group(rows: Sequence[tuple[Any, ...]]) -> dict[Any, list[tuple[Any, ...]]]:
    """Group rows by their first value, keeping the rest of each row."""
    groups: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for first, *rest in rows:
        groups[first].append(tuple(rest))
    return groups


def bucket_name(seconds: float) -> str:
    """Return a time bucket's length as words: minute, 5 minutes, hour, day."""
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= length:
            count = seconds / length
            return unit if count == 1 else f"{count:g} {unit}s"
    return f"{seconds:g} seconds"


def _time_bar(bucket_seconds: float) -> dict[str, Any]:
    """Return bar settings that span each time bucket from its start."""
    # A date axis measures bar widths in milliseconds.
    return {"width": bucket_seconds * 1000 * 0.9, "offset": 0}


def _stacked_time_bars(
    title: str,
    rows: Sequence[tuple[str, datetime, int]],
    bucket_seconds: int,
    colours: dict[str, str] | None = None,
) -> go.Figure:
    """Stack one bar series per group over time buckets; rows are (group, bucket, n)."""
    figure = _figure(title, "finished (UTC)", "attempts")
    if not rows:
        return _add_empty_note(figure)
    for group, points in sorted(_group(rows).items()):
        figure.add_bar(
            name=group,
            x=[point[0] for point in points],
            y=[point[1] for point in points],
            marker_color=(colours or {}).get(group),
            **_time_bar(bucket_seconds),
        )
    return figure


def throughput_chart(
    rows: Sequence[tuple[str, datetime, int]], bucket_seconds: int
) -> go.Figure:
    """Stack ok and failed attempts per time bucket; rows are (status, bucket, n)."""
    return _stacked_time_bars(
        f"Attempts finished per {bucket_name(bucket_seconds)}",
        rows,
        bucket_seconds,
        STATUS_COLOURS,
    )


def errors_chart(
    rows: Sequence[tuple[str, datetime, int]], bucket_seconds: int
) -> go.Figure:
    """Stack failed attempts by error type per time bucket."""
    return _stacked_time_bars(
        f"Failed attempts by error type per {bucket_name(bucket_seconds)}",
        rows,
        bucket_seconds,
    )


def histogram_chart(
    title: str,
    x_title: str,
    rows: Sequence[tuple[str, float, int]],
    bin_width: float,
    limits: Sequence[tuple[str, float]] = (),
) -> go.Figure:
    """Draw pre-binned counts as overlaid bars; rows are (series, bin centre, n).

    `limits` are labelled vertical lines, such as a stage's min and max chars.
    """
    figure = _figure(title, x_title, "count")
    figure.update_layout(barmode="overlay")
    if not rows:
        return _add_empty_note(figure)
    for series, points in sorted(_group(rows).items()):
        figure.add_bar(
            name=series,
            x=[point[0] for point in points],
            y=[point[1] for point in points],
            width=bin_width,
            opacity=0.7,
        )
    for label, value in limits:
        figure.add_vline(
            x=value, line_dash="dash", line_color="#444", annotation_text=label
        )
    return figure


def stacked_bar_chart(
    title: str,
    x_title: str,
    y_title: str,
    rows: Sequence[tuple[str, Any, float]],
    barmode: str = "stack",
    category_axis: bool = False,
) -> go.Figure:
    """Draw values per x by series, stacked or grouped; rows are (series, x, value).

    With `category_axis`, every x value is a category, even one that looks
    like a date.
    """
    figure = _figure(title, x_title, y_title)
    figure.update_layout(barmode=barmode)
    if category_axis:
        figure.update_xaxes(type="category")
    if not rows:
        return _add_empty_note(figure)
    for series, points in sorted(_group(rows).items()):
        figure.add_bar(
            name=series,
            x=[point[0] for point in points],
            y=[point[1] for point in points],
        )
    return figure
