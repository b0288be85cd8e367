"""Run one SQL query on the job database (read-only) and format its rows."""

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from batchkit.analysis.errors import AnalysisError
from batchkit.analysis.live import include_wal
from batchkit.job.model import Job
from batchkit.store.database import connect

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class QueryResult:
    """The column names and rows of one query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    uncompacted_attempts: int = 0  # read from execute's write-ahead log


@dataclass(frozen=True)
class RelationInfo:
    """One view or table of the job database and its columns."""

    name: str
    columns: list[str]


def run_query(
    job: Job, sql: str, *, lock_wait: float = LOCK_WAIT_SECONDS
) -> QueryResult:
    """Run `sql` on a read-only connection to the job database.

    `attempts` and the views built on it include the attempts still in a
    running execute's write-ahead log, as in `batchkit status`.
    """
    with connect(job, read_only=True, wait=lock_wait) as connection:
        uncompacted = include_wal(connection, job)
        try:
            cursor = connection.execute(sql)
        except duckdb.Error as error:
            raise AnalysisError(
                f"query failed: {_message(error)}; the query was: {sql.strip()!r}. "
                "List the views and their columns with `batchkit sql -j "
                f"{job.path}` (no query)"
            ) from error
        if cursor.description is None:
            return QueryResult(columns=[], rows=[], uncompacted_attempts=uncompacted)
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    logger.debug("query returned %s rows: %s", len(rows), sql)
    return QueryResult(columns=columns, rows=rows, uncompacted_attempts=uncompacted)


def list_views(job: Job, *, lock_wait: float = LOCK_WAIT_SECONDS) -> list[RelationInfo]:
    """Return the job database's views with their columns, by name."""
    return _list_relations(job, "VIEW", lock_wait)


def list_tables(
    job: Job, *, lock_wait: float = LOCK_WAIT_SECONDS
) -> list[RelationInfo]:
    """Return the job database's tables (items, inputs, ledgers) with their columns."""
    return _list_relations(job, "BASE TABLE", lock_wait)


def _list_relations(job: Job, table_type: str, lock_wait: float) -> list[RelationInfo]:
    with connect(job, read_only=True, wait=lock_wait) as connection:
        rows = connection.execute(
            """
            SELECT c.table_name, list(c.column_name ORDER BY c.ordinal_position)
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_catalog = c.table_catalog
             AND t.table_schema = c.table_schema
             AND t.table_name = c.table_name
            WHERE t.table_type = ? AND t.table_schema = 'main'
              AND t.table_catalog = current_database()
            GROUP BY c.table_name
            ORDER BY c.table_name
            """,
            [table_type],
        ).fetchall()
    return [RelationInfo(name=name, columns=list(columns)) for name, columns in rows]


def _message(error: Exception) -> str:
    """Return DuckDB's message up to its first blank line (the LINE pointer)."""
    lines = []
    for line in str(error).strip().splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines)


def _plain(value: Any) -> Any:
    """Convert a DuckDB value into what CSV and JSON can carry."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def format_csv(result: QueryResult) -> str:
    """Return the result as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(
            orjson.dumps(value, default=_plain).decode()
            if isinstance(value, list | dict)
            else _plain(value)
            for value in row
        )
    return buffer.getvalue()


def format_json(result: QueryResult) -> str:
    """Return the result as a JSON array of objects, one per row."""
    records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    return orjson.dumps(
        records, default=_plain, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


def format_cell(value: Any) -> str:
    """Return a value as table text: NULL for None, ISO times, compact floats."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=_plain).decode()
    return str(_plain(value))
