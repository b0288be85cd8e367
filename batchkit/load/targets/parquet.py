"""Write the valid results as one Parquet file when no database is configured.

The file is rewritten whole on every load (through a temporary name), so it
always holds every valid result in the target's shape; the ledger is not used.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.job.model import Job
from batchkit.load.ddl import column_types
from batchkit.load.rows import RowShape

POSTGRES_TO_ARROW = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


def export_schema(job: Job, shape: RowShape, item_types: dict[str, str]) -> pa.Schema:
    """Return the Arrow schema matching the target table's columns."""
    fields = []
    for definition in column_types(job, shape, item_types):
        name, kind = definition.split('" ', 1)
        kind = kind.removesuffix(" NOT NULL")
        fields.append((name[1:].replace('""', '"'), POSTGRES_TO_ARROW[kind]))
    return pa.schema(fields)


def export_path(job: Job) -> Path:
    """Return the export file of the job's target table."""
    return job.export_dir / f"{job.load.table}.parquet"


def write_export(
    job: Job,
    shape: RowShape,
    item_types: dict[str, str],
    rows: Iterable[tuple[Any, ...]],
) -> Path:
    """Write `rows` to the export file and return its path."""
    schema = export_schema(job, shape, item_types)
    columns: list[list[Any]] = [[] for _ in schema.names]
    for row in rows:
        for index, value in enumerate(row):
            columns[index].append(value)
    arrays = []
    for name, values in zip(schema.names, columns, strict=True):
        kind = schema.field(name).type
        if kind == pa.string():
            # Item columns of mixed JSON types are text in the target.
            values = [v if v is None or isinstance(v, str) else str(v) for v in values]
        arrays.append(pa.array(values, type=kind))
    table = pa.Table.from_arrays(arrays, schema=schema)
    path = export_path(job)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".parquet.tmp")
    pq.write_table(table, temporary, compression="zstd")
    temporary.replace(path)
    return path
