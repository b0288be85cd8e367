"""The data behind `batchkit status`: progress, spend, rate, errors, live batches.

Everything is read through a read-only connection, so status works while
execute runs and never writes to the job database. Attempts that execute has
not compacted into Parquet yet are read from its write-ahead log.
"""

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from batchkit.analysis.errors import missing_views_error
from batchkit.analysis.live import include_wal
from batchkit.job.model import Job
from batchkit.store.analysis_views import TERMINAL_BATCH_STATUSES
from batchkit.store.database import connect

# Writers keep the database locked only for short transactions, so a few
# seconds of retries are enough for a read-only open.
LOCK_WAIT_SECONDS = 10.0
DEFAULT_WINDOW_MINUTES = 5.0
# The shortest span a rate is measured over, so that the first few attempts of
# a run do not project a rate from a fraction of a second.
MIN_RATE_SECONDS = 3.0
TOP_ERRORS = 5


@dataclass(frozen=True)
class StageStatus:
    """Request counts of one stage by status, with its spend and estimate."""

    stage: str
    total: int = 0
    pending: int = 0
    failed: int = 0
    ok: int = 0  # valid but not loaded, or not checked yet
    rejected: int = 0
    loaded: int = 0
    unchecked: int = 0  # part of ok: results without a verdict yet
    spend_usd: float = 0.0
    estimate_usd: float | None = None


@dataclass(frozen=True)
class ErrorCount:
    """Failed attempts of one error type, overall and in the rate window."""

    error_type: str
    attempts: int
    recent_attempts: int
    last_message: str | None


@dataclass(frozen=True)
class LiveBatch:
    """A provider batch that has not reached a terminal status."""

    batch_id: str
    status: str
    request_count: int
    completed_count: int | None
    failed_count: int | None
    created_at: datetime


@dataclass(frozen=True)
class RunStatus:
    """A snapshot of a run: per-stage counts, spend, rate, ETA, errors, batches."""

    job: str
    generated_at: datetime
    stages: list[StageStatus]
    totals: StageStatus
    window_minutes: float
    recent_attempts: int
    last_finished_at: datetime | None
    errors: list[ErrorCount] = field(default_factory=list)
    batches: list[LiveBatch] = field(default_factory=list)
    uncompacted_attempts: int = 0  # read from execute's write-ahead log
    # The earliest start of the attempts that finished in the window, but not
    # before the window's start.
    recent_first_started_at: datetime | None = None

    @property
    def rate_seconds(self) -> float:
        """Seconds the rate is measured over.

        The window, or, for a run younger than the window, the time since the
        first attempt that finished in the window started (at least
        MIN_RATE_SECONDS).
        """
        window = self.window_minutes * 60
        first = self.recent_first_started_at
        if first is None:
            return window
        covered = (self.generated_at - first).total_seconds()
        return min(window, max(covered, MIN_RATE_SECONDS))

    @property
    def rate_per_minute(self) -> float:
        """Attempts finished per minute over the last `rate_seconds`."""
        return self.recent_attempts / self.rate_seconds * 60

    @property
    def remaining(self) -> int:
        """Requests without a valid result: pending, failed and rejected."""
        return self.totals.pending + self.totals.failed + self.totals.rejected

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every remaining request is sent once at the current rate."""
        if self.remaining == 0:
            return 0.0
        if self.rate_per_minute == 0:
            return None
        return self.remaining / self.rate_per_minute * 60

    def to_dict(self) -> dict[str, Any]:
        """Return the status as JSON-ready data, with the derived figures."""
        data = asdict(self)
        data["rate_seconds"] = self.rate_seconds
        data["rate_per_minute"] = self.rate_per_minute
        data["remaining"] = self.remaining
        data["eta_seconds"] = self.eta_seconds
        return data


def format_usd(value: float) -> str:
    """Return an amount in USD with cents, or four decimals below one dollar."""
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


def read_status(
    job: Job,
    *,
    window_minutes: float = DEFAULT_WINDOW_MINUTES,
    now: datetime | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> RunStatus:
    """Read the run's status from the job database without writing to it."""
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=window_minutes)
    with connect(job, read_only=True, wait=lock_wait) as connection:
        try:
            uncompacted = include_wal(connection, job)
            stages = _read_stages(connection, job)
            recent, first_started, last = _read_recent(connection, since, now)
            errors = _read_errors(connection, since, now)
            batches = _read_batches(connection)
        except duckdb.CatalogException as error:
            raise missing_views_error(job.db_path, job.path, error) from error
    return RunStatus(
        job=job.name,
        generated_at=now,
        stages=stages,
        totals=_sum_stages(stages),
        window_minutes=window_minutes,
        recent_attempts=recent,
        last_finished_at=last,
        errors=errors,
        batches=batches,
        uncompacted_attempts=uncompacted,
        recent_first_started_at=first_started,
    )


def _read_stages(connection: duckdb.DuckDBPyConnection, job: Job) -> list[StageStatus]:
    counts = {
        row[0]: row[1:]
        for row in connection.execute(
            "SELECT stage, total, pending, failed, ok, rejected, loaded, unchecked "
            "FROM progress"
        ).fetchall()
    }
    spend = dict(
        connection.execute(
            "SELECT stage, coalesce(sum(cost_usd), 0) FROM attempts GROUP BY stage"
        ).fetchall()
    )
    estimates = dict(
        connection.execute(
            """
            SELECT stage, cost_usd FROM estimates
            QUALIFY row_number() OVER (PARTITION BY stage ORDER BY prepared_at DESC)
                = 1
            """
        ).fetchall()
    )
    names = list(job.stage_names)
    names += sorted(set(counts) - set(names))  # stages since removed from the job
    stages = []
    for name in names:
        total, pending, failed, ok, rejected, loaded, unchecked = counts.get(
            name, (0,) * 7
        )
        stages.append(
            StageStatus(
                stage=name,
                total=total,
                pending=pending,
                failed=failed,
                ok=ok,
                rejected=rejected,
                loaded=loaded,
                unchecked=unchecked,
                spend_usd=float(spend.get(name, 0.0)),
                estimate_usd=estimates.get(name),
            )
        )
    return stages


def _sum_stages(stages: list[StageStatus]) -> StageStatus:
    estimates = [s.estimate_usd for s in stages if s.estimate_usd is not None]
    return StageStatus(
        stage="total",
        total=sum(s.total for s in stages),
        pending=sum(s.pending for s in stages),
        failed=sum(s.failed for s in stages),
        ok=sum(s.ok for s in stages),
        rejected=sum(s.rejected for s in stages),
        loaded=sum(s.loaded for s in stages),
        unchecked=sum(s.unchecked for s in stages),
        spend_usd=sum(s.spend_usd for s in stages),
        estimate_usd=sum(estimates) if estimates else None,
    )


def _read_recent(
    connection: duckdb.DuckDBPyConnection, since: datetime, now: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """Return the window's attempt count and earliest start, and the last finish.

    The earliest start is clamped to `since`, because an attempt that started
    before the window spent only part of its time in the window.
    """
    row = connection.execute(
        """
        SELECT count(*) FILTER (WHERE finished_at BETWEEN $since AND $now),
               greatest(
                   min(coalesce(started_at, finished_at))
                       FILTER (WHERE finished_at BETWEEN $since AND $now),
                   $since
               ),
               max(finished_at)
        FROM attempts
        """,
        {"since": since, "now": now},
    ).fetchone()
    assert row is not None  # an aggregate always returns one row
    recent = int(row[0])
    return recent, row[1] if recent else None, row[2]


def _read_errors(
    connection: duckdb.DuckDBPyConnection, since: datetime, now: datetime
) -> list[ErrorCount]:
    rows = connection.execute(
        """
        SELECT coalesce(error_type, 'unknown'), count(*),
               count(*) FILTER (WHERE finished_at BETWEEN ? AND ?),
               arg_max(error_message, finished_at)
        FROM attempts
        WHERE status <> 'ok'
        GROUP BY 1
        ORDER BY 2 DESC, 1
        LIMIT ?
        """,
        [since, now, TOP_ERRORS],
    ).fetchall()
    return [ErrorCount(*row) for row in rows]


def _read_batches(connection: duckdb.DuckDBPyConnection) -> list[LiveBatch]:
    placeholders = ", ".join("?" for _ in TERMINAL_BATCH_STATUSES)
    rows = connection.execute(
        f"""
        SELECT batch_id, status, request_count, completed_count, failed_count,
               created_at
        FROM provider_batches
        WHERE status NOT IN ({placeholders})
        ORDER BY created_at
        """,
        list(TERMINAL_BATCH_STATUSES),
    ).fetchall()
    return [LiveBatch(*row) for row in rows]
