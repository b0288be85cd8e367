"""Select the items each stage renders: its `when` filter and its dependency."""

from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from batchkit.job.model import Job, StageSpec
from batchkit.prepare.errors import PrepareError, describe_duckdb_error

# (item_key, item columns, the dependency's result or None)
StageRow = tuple[str, dict[str, Any], dict[str, Any] | None]


def _where(stage: StageSpec) -> str:
    return "TRUE" if stage.when is None else f"({stage.when})"


def _run_query(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec, sql: str
) -> duckdb.DuckDBPyConnection:
    try:
        return connection.execute(sql, [stage.depends_on] if stage.depends_on else [])
    except duckdb.Error as error:
        index = job.stage_names.index(stage.name)
        raise PrepareError(
            f"{job.path}: stages[{index}].when = {stage.when!r}: the predicate failed "
            f"on the items: {describe_duckdb_error(error)}; it must be a SQL "
            "condition over the items query's columns"
        ) from error


def count_stage_items(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec
) -> tuple[int, int]:
    """Return (items to render, items still waiting for a valid dependency result)."""
    if stage.depends_on is None:
        sql = f"SELECT count(*), 0 FROM current_items i WHERE {_where(stage)}"
    else:
        sql = f"""
            SELECT count(v.custom_id), count(*) - count(v.custom_id)
            FROM current_items i
            LEFT JOIN valid_results v ON v.item_key = i.item_key AND v.stage = ?
            WHERE {_where(stage)}
        """
    row = _run_query(connection, job, stage, sql).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def select_stage_rows(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec
) -> Iterator[StageRow]:
    """Yield the rows a stage renders, in item_key order.

    A dependent stage gets only the items whose dependency has a valid
    result, with that result as the source.
    """
    if stage.depends_on is None:
        sql = f"""
            SELECT i.item_key, to_json(i) FROM current_items i
            WHERE {_where(stage)} ORDER BY i.item_key
        """
    else:
        sql = f"""
            SELECT i.item_key, to_json(i), v.content, v.custom_id, v.attempt_id
            FROM current_items i
            JOIN valid_results v ON v.item_key = i.item_key AND v.stage = ?
            WHERE {_where(stage)} ORDER BY i.item_key
        """
    # fetchall, not fetchmany: the caller stores each chunk through the same
    # connection (the temp table current_items exists only there), and a new
    # query on a DuckDB connection discards the rows of the previous one.
    rows = _run_query(connection, job, stage, sql).fetchall()
    for row in rows:
        yield _stage_row(row, stage.depends_on)


def _stage_row(row: tuple[Any, ...], depends_on: str | None) -> StageRow:
    item = orjson.loads(row[1])
    del item["item_key"]
    if depends_on is None:
        return row[0], item, None
    source = {
        "content": row[2],
        "custom_id": row[3],
        "attempt_id": row[4],
        "stage": depends_on,
    }
    return row[0], item, source


def retire_dropped_requests(
    connection: duckdb.DuckDBPyConnection, job: Job, stage: StageSpec
) -> int:
    """Supersede the stage's current requests for items the query no longer yields.

    An item dropped from the items query, or no longer matching the stage's
    `when`, would otherwise stay pending and be sent. Returns the count.
    """
    sql = f"""
        UPDATE request_versions SET superseded_at = now()
        WHERE stage = ? AND superseded_at IS NULL
          AND item_key NOT IN (
            SELECT i.item_key FROM current_items i WHERE {_where(stage)})
    """
    try:
        row = connection.execute(sql, [stage.name]).fetchone()
    except duckdb.Error as error:
        raise PrepareError(
            f"{job.path}: stage {stage.name!r}: retiring requests of dropped items "
            f"failed: {describe_duckdb_error(error)}"
        ) from error
    return int(row[0]) if row else 0
