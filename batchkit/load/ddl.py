"""The target table's CREATE TABLE and unique index, for `batchkit schema`.

Key and item column types are inferred from the JSON values of the `items`
table: whole numbers become bigint, other numbers double precision, booleans
boolean, everything else (and columns with no items yet) text.
"""

import duckdb

from batchkit.job.model import Job
from batchkit.load.rows import LONG_FIELD_NAMES, STAGE_FIELDS, RowShape, row_shape

JSON_TO_POSTGRES = {
    "BIGINT": "bigint",
    "UBIGINT": "bigint",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "VARCHAR": "text",
}


def quote_identifier(name: str) -> str:
    """Return `name` as a double-quoted PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(name: str) -> str:
    """Return a `table` or `schema.table` name with each part quoted."""
    return ".".join(quote_identifier(part) for part in name.split("."))


def split_table(name: str) -> tuple[str, str]:
    """Return (schema, table) of a table name; the schema defaults to public."""
    schema, _, table = name.rpartition(".")
    return schema or "public", table


def infer_item_types(
    connection: duckdb.DuckDBPyConnection, columns: tuple[str, ...]
) -> dict[str, str]:
    """Return the PostgreSQL type of each item column from the stored items."""
    types = {}
    for column in columns:
        path = '$."' + column.replace('"', '\\"') + '"'
        found = {
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT json_type(item, ?) FROM items", [path]
            ).fetchall()
            if row[0] not in (None, "NULL")
        }
        mapped = {JSON_TO_POSTGRES.get(kind, "text") for kind in found}
        if mapped == {"bigint", "double precision"}:
            mapped = {"double precision"}
        types[column] = mapped.pop() if len(mapped) == 1 else "text"
    return types


def column_types(job: Job, shape: RowShape, item_types: dict[str, str]) -> list[str]:
    """Return `name type` definitions of every loaded column, in column order."""
    field_types = dict(STAGE_FIELDS)
    long_names = {LONG_FIELD_NAMES.get(n, n): t for n, t in STAGE_FIELDS}
    stage_of = shape.stage_of_column()
    definitions = []
    for column in shape.columns:
        if column in item_types:
            kind = item_types[column]
        elif shape.layout == "long":
            kind = "text" if column in ("stage", "content") else long_names[column]
        else:
            content = shape.stage_groups[stage_of[column]][0]
            suffix = column.removeprefix(content + "_")
            kind = "text" if column == content else field_types[suffix]
        required = " NOT NULL" if column in shape.key else ""
        definitions.append(f"{quote_identifier(column)} {kind}{required}")
    return definitions


def index_name(job: Job) -> str:
    """Return the name of the target's unique index on its conflict key."""
    _, table = split_table(job.load.table)
    return f"{table}_batchkit_key"[:63]


def create_statements(job: Job, item_types: dict[str, str]) -> list[str]:
    """Return the CREATE TABLE and CREATE UNIQUE INDEX statements of the target."""
    shape = row_shape(job)
    definitions = [*column_types(job, shape, item_types)]
    definitions.append('"loaded_at" timestamptz NOT NULL DEFAULT now()')
    body = ",\n    ".join(definitions)
    table = quote_table(job.load.table)
    key = ", ".join(quote_identifier(column) for column in shape.key)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {quote_identifier(index_name(job))} "
        f"ON {table} ({key})",
    ]


def schema_script(job: Job, item_types: dict[str, str]) -> str:
    """Return the target's DDL as a SQL script for a Supabase migration."""
    shape = row_shape(job)
    lines = [
        f"-- batchkit load target of job {job.name}: {shape.layout} layout, "
        f"unique on ({', '.join(shape.key)}).",
        "-- The service role bypasses row-level security. Other roles need INSERT,",
        "-- UPDATE and SELECT on the table and, with RLS enabled, matching policies.",
    ]
    for statement in create_statements(job, item_types):
        lines.append(statement + ";")
    return "\n".join(lines) + "\n"
