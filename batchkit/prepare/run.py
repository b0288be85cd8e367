"""The prepare phase: inputs → items → rendered requests → batch files → estimates."""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import duckdb

from batchkit.job.model import Job, StageSpec
from batchkit.load.validate import refresh_verdicts
from batchkit.prepare.batchfiles import BatchFileSet, write_stage_files
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.estimate import StageEstimate, estimate_stages, record_estimates
from batchkit.prepare.inputs import check_input_files, load_input
from batchkit.prepare.items import build_items
from batchkit.prepare.render import StageRenderer
from batchkit.prepare.requests import StoreCounts, store_requests
from batchkit.prepare.selection import (
    count_stage_items,
    retire_dropped_requests,
    select_stage_rows,
)
from batchkit.store.database import connect
from batchkit.store.lock import execute_lock

logger = logging.getLogger(__name__)

# Requests rendered, then stored, per round trip to DuckDB.
RENDER_CHUNK = 10_000

T = TypeVar("T")


class ProgressCallback(Protocol):
    """Receiver of prepare's progress, which the CLI draws as a progress bar."""

    def __call__(self, stage: str, rendered: int, total: int) -> None:
        """Report that `rendered` of the stage's `total` requests are done."""


@dataclass
class PrepareSummary:
    """Summary of one prepare run: rows read, requests stored and files written."""

    input_rows: dict[str, int] = field(default_factory=dict)
    items: int = 0
    stages: dict[str, StoreCounts] = field(default_factory=dict)
    # Per stage, the items whose dependency has no valid result yet.
    waiting: dict[str, int] = field(default_factory=dict)
    # Per stage, current requests superseded because their item left the query.
    retired: dict[str, int] = field(default_factory=dict)
    files: list[BatchFileSet] = field(default_factory=list)
    estimates: list[StageEstimate] = field(default_factory=list)


def prepare_job(
    job: Job,
    *,
    stage_names: list[str] | None = None,
    limit: int | None = None,
    write_files: bool = True,
    progress: ProgressCallback | None = None,
) -> PrepareSummary:
    """Render every selected stage's requests for every item and store new versions.

    Inputs are checked before the job database is opened, and the rest runs
    in one transaction, so a bad input, item or template writes no request
    and changes no batch file. Batch files are rewritten after the commit.
    """
    stages = _select_stages(job, stage_names)
    check_input_files(job)
    summary = PrepareSummary()
    logger.info(
        "prepare started: job %s, stages %s", job.name, [s.name for s in stages]
    )
    with execute_lock(job, "prepare"), connect(job) as connection:
        refresh_verdicts(connection, job)
        # NOTE: the whole run is one transaction, so memory grows with the job:
        # about 1 GB resident for 62,000 requests of 2.8 KB (benchmarks/prepare.py).
        connection.execute("BEGIN")
        try:
            _load_items(connection, job, limit, summary)
            for stage in stages:
                _render_stage(connection, job, stage, summary, progress)
                # With --limit the other items are only left out, not dropped.
                if limit is None:
                    summary.retired[stage.name] = retire_dropped_requests(
                        connection, job, stage
                    )
            summary.estimates = estimate_stages(connection, job)
            record_estimates(connection, summary.estimates)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        if write_files:
            summary.files = [
                write_stage_files(
                    connection,
                    stage.name,
                    job.requests_dir / stage.name,
                    job.provider.batch,
                )
                for stage in stages
            ]
    logger.info("prepare finished: %s items, stages %s", summary.items, summary.stages)
    return summary


def _select_stages(job: Job, stage_names: list[str] | None) -> list[StageSpec]:
    for name in stage_names or []:
        if name not in job.stage_names:
            raise PrepareError(
                f"--stage {name!r}: no stage of that name; stages are "
                f"{', '.join(job.stage_names)}"
            )
    return [s for s in job.stages if not stage_names or s.name in stage_names]


def _load_items(
    connection: duckdb.DuckDBPyConnection,
    job: Job,
    limit: int | None,
    summary: PrepareSummary,
) -> None:
    for spec in job.inputs:
        summary.input_rows[spec.name] = load_input(connection, spec)
    summary.items = build_items(connection, job)
    if limit is not None and limit < summary.items:
        # DuckDB keeps the query's row order in the table, so these are the
        # query's first rows.
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE current_items AS "
            "SELECT * FROM current_items LIMIT ?",
            [limit],
        )
        summary.items = limit
    connection.execute(
        """
        INSERT OR REPLACE INTO items
        SELECT item_key, to_json(ci), now() FROM current_items ci
        """
    )


def _render_stage(
    connection: duckdb.DuckDBPyConnection,
    job: Job,
    stage: StageSpec,
    summary: PrepareSummary,
    progress: ProgressCallback | None,
) -> None:
    renderer = StageRenderer(stage)
    total, waiting = count_stage_items(connection, job, stage)
    summary.waiting[stage.name] = waiting
    rendered = renderer.render_all(select_stage_rows(connection, job, stage))
    counts = StoreCounts(0, 0, 0, 0)
    for chunk in _chunks(rendered, RENDER_CHUNK):
        counts = counts + store_requests(connection, chunk)
        if progress is not None:
            progress(stage.name, counts.rendered, total)
    summary.stages[stage.name] = counts
    logger.info(
        "stage %s: %s rendered, %s new, %s changed, %s waiting",
        stage.name,
        counts.rendered,
        counts.added,
        counts.changed,
        waiting,
    )


def _chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
