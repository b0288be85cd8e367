"""The status tables and lines as printed on an 80-column console."""

import io
import re
from datetime import timedelta

import pytest
from rich.console import Console

from batchkit.analysis.status import (
    ErrorCount,
    LiveBatch,
    RunStatus,
    StageStatus,
)
from batchkit.cli.analysis import print_status
from batchkit.cli.common import format_duration
from tests.analysis.runs import utc

NOW = utc("2025-07-01T12:00:00")
BATCH_ID = "batch_67a1b2c3d4e5f60718293a4b5c6d7e8f"
LONG_MESSAGE = (
    "connection: Server disconnected without sending a response; "
    "the request is sent again after the backoff"
)


def big_run(**changes: object) -> RunStatus:
    """A run of 2.8 million requests with long names, errors and a batch."""
    counts = {"failed": 12_345, "ok": 650_000, "rejected": 1_537, "loaded": 36_118}
    summary = StageStatus(
        "summary",
        total=1_400_000,
        pending=700_000,
        spend_usd=123.45,
        estimate_usd=456.78,
        **counts,
    )
    title = StageStatus(
        "title_and_keywords",
        total=1_400_000,
        pending=1_400_000,
        estimate_usd=200.0,
    )
    totals = StageStatus(
        "total",
        total=2_800_000,
        pending=2_100_000,
        spend_usd=123.45,
        estimate_usd=656.78,
        **counts,
    )
    values: dict[str, object] = {
        "job": "productmind",
        "generated_at": NOW,
        "stages": [summary, title],
        "totals": totals,
        "window_minutes": 5.0,
        "recent_attempts": 1_405,
        "last_finished_at": NOW,
        "errors": [
            ErrorCount("connection", 1_537, 1_537, LONG_MESSAGE),
            ErrorCount("rate_limit", 12, 0, "rate_limit: injected"),
        ],
        "batches": [
            LiveBatch(BATCH_ID, "in_progress", 50_000, 12_345, 12, NOW),
        ],
        "recent_first_started_at": NOW - timedelta(minutes=10),
    }
    values.update(changes)
    return RunStatus(**values)  # type: ignore[arg-type]


def render(run: RunStatus, width: int = 80) -> str:
    """Return what `batchkit status` prints for `run` on a `width`-column console."""
    console = Console(width=width, record=True, file=io.StringIO())
    print_status(run, console)
    return console.export_text()


def cells(text: str, first: str) -> list[str]:
    """Return the cells of the table row that starts with `first`."""
    for line in text.splitlines():
        row = [cell.strip() for cell in line.strip("│ ").split("│")]
        if row[0] == first:
            return row
    raise AssertionError(f"no row starts with {first!r} in:\n{text}")


def test_lines_fit_80_columns() -> None:
    text = render(big_run())
    widths = [len(line.rstrip()) for line in text.splitlines()]
    assert max(widths) <= 80


def test_counts_and_headers_unbroken() -> None:
    text = render(big_run())
    header = cells(text.replace("┃", "│"), "stage")
    assert header == ["stage", "total", "pending", "ok", "failed", "rejected", "loaded"]
    assert cells(text, "summary") == [
        "summary",
        "1,400,000",
        "700,000",
        "650,000",
        "12,345",
        "1,537",
        "36,118",
    ]
    assert cells(text, "total")[1:] == [
        "2,800,000",
        "2,100,000",
        "650,000",
        "12,345",
        "1,537",
        "36,118",
    ]


def test_spend_in_second_table() -> None:
    text = render(big_run())
    assert "spend by stage" in text
    spend_rows = text.split("spend by stage")[1]
    assert cells(spend_rows, "summary") == ["summary", "123.45", "456.78", "27%"]
    assert cells(spend_rows, "total") == ["total", "123.45", "656.78", "19%"]


def test_long_stage_name_folds() -> None:
    counts, spend = render(big_run()).split("spend by stage")
    # The counts table folds the name rather than squeeze a count.
    rows = [line for line in counts.splitlines() if line.startswith("│")]
    names = [row.strip("│ ").split("│")[0].strip() for row in rows]
    assert names[1] + names[2] == "title_and_keywords"
    # The spend table has room for the whole name.
    assert cells(spend, "title_and_keywords")[1:] == ["0.0000", "200.00", "0%"]


def test_error_counts_unbroken() -> None:
    text = render(big_run())
    header = cells(text.replace("┃", "│"), "error type")
    assert header == ["error type", "attempts", "last 5 min", "last message"]
    connection = cells(text, "connection")
    assert connection[1:3] == ["1,537", "1,537"]
    assert cells(text, "rate_limit")[1:] == ["12", "0", "rate_limit: injected"]


def test_long_message_ellipsized() -> None:
    message = cells(render(big_run()), "connection")[3]
    assert message.endswith("…")
    assert LONG_MESSAGE.startswith(message.removesuffix("…"))
    # The message keeps one line: no row starts with an empty error type.
    errors = render(big_run()).split("failed attempts by error type")[1]
    errors = errors.split("live provider batches")[0]
    assert len(re.findall(r"^│\s+│", errors, re.MULTILINE)) == 0


def test_batch_id_kept_whole() -> None:
    batches = render(big_run()).split("live provider batches")[1]
    first_cells = [
        line.strip("│ ").split("│")[0].strip()
        for line in batches.splitlines()
        if line.startswith("│")
    ]
    # The id folds onto a second line, so no character is lost.
    assert "".join(first_cells) == BATCH_ID
    row = cells(batches, first_cells[0])
    assert row[1:] == ["in_progress", "12,345 of 50,000", "12", "07-01 12:00"]


def test_rate_line_full_window() -> None:
    text = render(big_run(), width=200)
    assert "rate: 281.0 attempts/min over the last 5 min;" in text


def test_rate_line_young_run() -> None:
    run = big_run(recent_first_started_at=NOW - timedelta(seconds=25))
    text = " ".join(render(run, width=200).split())
    assert (
        "rate: 3,372.0 attempts/min over the last 25s "
        "(since the first attempt in the 5 min window);"
    ) in text
    # 2,113,882 requests left at 3,372 a minute.
    assert "ETA 10h 26m" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(25.2, "25s"), (60, "1m 00s"), (250, "4m 10s"), (3_900, "1h 05m")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
