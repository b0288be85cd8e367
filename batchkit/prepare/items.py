"""Form the items with the job's SQL query and check their keys."""

import duckdb

from batchkit.job.model import Job
from batchkit.prepare.errors import PrepareError, describe_duckdb_error

# Separates the values of a composite item key inside item_key and custom_id.
KEY_SEPARATOR = ":"


def build_items(connection: duckdb.DuckDBPyConnection, job: Job) -> int:
    """Run the items query into the temp table `current_items`; return its row count.

    The table gets an `item_key` column: the key columns' values joined by ':'.
    """
    try:
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE raw_items AS {job.items.query}"
        )
    except duckdb.Error as error:
        tables = ", ".join(spec.name for spec in job.inputs)
        raise PrepareError(
            f"{job.path}: items.query failed: {describe_duckdb_error(error)}; fix the "
            f"query (its tables are the inputs: {tables})"
        ) from error

    columns = [row[0] for row in connection.execute("DESCRIBE raw_items").fetchall()]
    missing = [key for key in job.items.key if key not in columns]
    if missing:
        raise PrepareError(
            f"{job.path}: items.key names {', '.join(map(repr, missing))}, which the "
            f"items query does not return; its columns are {', '.join(columns)}. "
            "Fix items.key or select the column in items.query"
        )
    if "item_key" in columns:
        raise PrepareError(
            f"{job.path}: items.query returns a column named item_key, which batchkit "
            "reserves; rename it with AS"
        )

    separator = f" || '{KEY_SEPARATOR}' || "
    key_sql = separator.join(f'CAST("{key}" AS VARCHAR)' for key in job.items.key)
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE current_items AS "
        f"SELECT {key_sql} AS item_key, * FROM raw_items"
    )
    connection.execute("DROP TABLE raw_items")
    _check_keys(connection, job)
    row = connection.execute("SELECT count(*) FROM current_items").fetchone()
    count = int(row[0]) if row else 0
    if count == 0:
        raise PrepareError(
            f"{job.path}: items.query returned no rows; check the inputs and the query"
        )
    return count


def _check_keys(connection: duckdb.DuckDBPyConnection, job: Job) -> None:
    nulls = connection.execute(
        "SELECT count(*) FROM current_items WHERE item_key IS NULL"
    ).fetchone()
    if nulls and nulls[0]:
        raise PrepareError(
            f"{job.path}: {nulls[0]} items have an empty key column "
            f"({', '.join(job.items.key)}); fill in the key or filter those rows out "
            "in items.query"
        )
    duplicates = connection.execute(
        """
        SELECT item_key, count(*) AS copies FROM current_items
        GROUP BY item_key HAVING count(*) > 1
        ORDER BY copies DESC, item_key LIMIT 5
        """
    ).fetchall()
    if duplicates:
        listed = ", ".join(f"{key!r} ({copies} rows)" for key, copies in duplicates)
        raise PrepareError(
            f"{job.path}: items.key ({', '.join(job.items.key)}) is not unique; first "
            f"duplicates: {listed}. Add columns to items.key or remove the duplicate "
            "input rows"
        )
