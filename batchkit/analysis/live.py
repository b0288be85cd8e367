"""Attempts still in execute's write-ahead log, for an up-to-date status and sql.

execute appends every attempt to `responses/wal/<run_id>.jsonl` and compacts
the rows into Parquet only every few thousand rows or tens of seconds, so the
`attempts` view lags a running execute. `include_wal` gives one read-only
connection a temporary `attempts` view that adds the rows still in the WAL.
"""

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from batchkit.job.model import Job
from batchkit.store.responses import RESPONSE_COLUMNS, RESPONSE_SCHEMA

logger = logging.getLogger(__name__)

TIMESTAMP_COLUMNS = tuple(
    field.name for field in RESPONSE_SCHEMA if pa.types.is_timestamp(field.type)
)


def read_wal_rows(path: Path) -> list[dict[str, Any]]:
    """Return the attempts in one WAL file, skipping lines that are not JSON.

    The writer may be in the middle of a line, so a torn last line is normal.
    A file that execute removed after compacting it returns no rows, because
    its rows are in a Parquet part by then.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        logger.debug("%s: removed after compaction while being read", path)
        return []
    rows = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            logger.debug(
                "%s: skipped a line that is not JSON (still being written)", path
            )
            continue
        row = {column: record.get(column) for column in RESPONSE_COLUMNS}
        for column in TIMESTAMP_COLUMNS:
            if isinstance(row[column], str):
                row[column] = datetime.fromisoformat(row[column])
        rows.append(row)
    return rows


def include_wal(connection: duckdb.DuckDBPyConnection, job: Job) -> int:
    """Make `attempts` on this connection include the WAL's rows; return how many.

    The temporary view shadows the stored `attempts` view, and the stored
    views that read `attempts` (results, progress, costs, ...) see it too,
    because DuckDB binds a view's query when it runs and looks in the temp
    schema first. Rows already compacted into Parquet count once.
    """
    # NOTE: the shadowing of stored views by a temporary one is DuckDB 2.0.1
    # behaviour checked by tests/analysis/test_live.py, not a documented promise.
    rows: list[dict[str, Any]] = []
    if job.wal_dir.is_dir():
        for path in sorted(job.wal_dir.glob("*.jsonl")):
            rows.extend(read_wal_rows(path))
    if not rows:
        return 0
    table = pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA)
    connection.register("wal_attempts", table)
    # `main.attempts` alone would resolve to the temp catalog's schema `main`,
    # which is the new view itself. So the stored view is named by its catalog.
    row = connection.execute("SELECT current_database()").fetchone()
    assert row is not None
    stored = '"' + str(row[0]).replace('"', '""') + '".main.attempts'
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW attempts AS
        SELECT * FROM {stored}
        UNION ALL BY NAME
        SELECT * FROM wal_attempts
        WHERE attempt_id NOT IN (SELECT attempt_id FROM {stored})
        """
    )
    return len(rows)
