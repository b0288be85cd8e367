"""The prepare phase: inputs → items → rendered requests → batch files → estimates."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson

from batchkit.job.model import Job, StageSpec
from batchkit.load.validate import refresh_verdicts
from batchkit.prepare.batchfiles import BatchFileSet, write_stage_files
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.estimate import StageEstimate, estimate_stages, record_estimates
from batchkit.prepare.inputs import load_input
from batchkit.prepare.items import build_items
from batchkit.prepare.render import StageRenderer
from batchkit.prepare.requests import StoreCounts, store_requests
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

RENDER_CHUNK = 5_000

# Called with (stage name, requests rendered so far, total for the stage).
ProgressCallback = Callable[[str, int, int], None]


@dataclass
class PrepareSummary:
    """What one prepare run read, rendered, stored and wrote."""

    input_rows: dict[str, int] = field(default_factory=dict)
    items: int = 0
    stages: dict[str, StoreCounts] = field(default_factory=dict)
    waiting: dict[str, int] = field(
        default_factory=dict
    )  # items whose dependency is not valid yet
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

    Everything happens in one transaction, so a failure writes nothing.
    """
    for name in stage_names or []:
        if name not in job.stage_names:
            raise PrepareError(
                f"--stage {name!r}: no stage of that name; stages are "
                f"{', '.join(job.stage_names)}"
            )
    stages = [s for s in job.stages if not stage_names or s.name in stage_names]
    summary = PrepareSummary()
    with connect(job) as connection:
        refresh_verdicts(connection, job)
        connection.execute("BEGIN")
        try:
            _prepare_in_transaction(connection, job, stages, limit, summary, progress)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        if write_files:
            for stage in stages:
                directory = job.requests_dir / stage.name
                summary.files.append(
                    write_stage_files(
                        connection, stage.name, directory, job.provider.batch
                    )
                )
    logger.info("prepare finished: %s items, stages %s", summary.items, summary.stages)
    return summary


def _prepare_in_transaction(
    connection: duckdb.DuckDBPyConnection,
    job: Job,
    stages: list[StageSpec],
    limit: int | None,
    summary: PrepareSummary,
    progress: ProgressCallback | None,
) -> None:
    for spec in job.inputs:
        summary.input_rows[spec.name] = load_input(connection, spec)
    summary.items = build_items(connection, job)
    if limit is not None:
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE current_items AS "
            "SELECT * FROM current_items LIMIT ?",
            [limit],
        )
        summary.items = min(summary.items, limit)
    connection.execute(
        """
        INSERT OR REPLACE INTO items
        SELECT item_key, to_json(ci), now() FROM current_items ci
        """
    )
    for stage in stages:
        renderer = StageRenderer(stage)
        total, waiting = _count_stage_items(connection, job, stage)
        summary.waiting[stage.name] = waiting
        rows = _stage_rows(connection, job, stage)
        counts = StoreCounts(0, 0, 0, 0)
        for chunk in _chunks(renderer.render_all(rows), RENDER_CHUNK):
            stored = store_requests(connection, chunk)
            counts = StoreCounts(
                counts.rendered + stored.rendered,
                counts.added + stored.added,
                counts.changed + stored.changed,
                counts.unchanged + stored.unchanged,
            )
            if progress is not None:
                progress(stage.name, counts.rendered, total)
        summary.stages[stage.name] = counts
    summary.estimates = estimate_stages(connection, job)
    record_estimates(connection, summary.estimates)


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stage_filter(job: Job, stage: StageSpec) -> str:
    if stage.when is None:
        return "TRUE"
    return f"({stage.when})"


def _run_query(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec, sql: str
) -> duckdb.DuckDBPyConnection:
    try:
        return connection.execute(sql, [stage.depends_on] if stage.depends_on else [])
    except duckdb.Error as error:
        index = job.stage_names.index(stage.name)
        raise PrepareError(
            f"{job.path}: stages[{index}].when = {stage.when!r}: the predicate failed "
            f"on the items: {error}"
        ) from error


def _count_stage_items(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec
) -> tuple[int, int]:
    """Return (items to render, items waiting for their dependency)."""
    where = _stage_filter(job, stage)
    if stage.depends_on is None:
        sql = f"SELECT count(*), 0 FROM current_items i WHERE {where}"
    else:
        sql = f"""
            SELECT count(v.custom_id), count(*) - count(v.custom_id)
            FROM current_items i
            LEFT JOIN valid_results v ON v.item_key = i.item_key AND v.stage = ?
            WHERE {where}
        """
    row = _run_query(connection, job, stage, sql).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _stage_rows(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    where = _stage_filter(job, stage)
    if stage.depends_on is None:
        sql = f"SELECT i.item_key, to_json(i) FROM current_items i WHERE {where}"
    else:
        # Only items whose dependency has a valid result render.
        sql = f"""
            SELECT i.item_key, to_json(i), v.content, v.custom_id, v.attempt_id
            FROM current_items i
            JOIN valid_results v ON v.item_key = i.item_key AND v.stage = ?
            WHERE {where}
        """
    cursor = _run_query(connection, job, stage, sql + " ORDER BY i.item_key")
    rows = cursor.fetchall()
    for row in rows:
        item = orjson.loads(row[1])
        item.pop("item_key", None)
        source = None
        if stage.depends_on is not None:
            source = {
                "content": row[2],
                "custom_id": row[3],
                "attempt_id": row[4],
                "stage": stage.depends_on,
            }
        yield row[0], item, source
