"""Load the job's input files into DuckDB tables named after the inputs."""

import codecs
from pathlib import Path

import duckdb

from batchkit.job.model import InputSpec
from batchkit.prepare.errors import PrepareError

_CHUNK = 1 << 20


def _check_utf8(path: Path) -> None:
    """Raise PrepareError naming the line of the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                bad_line = line + chunk[: error.start].count(b"\n")
                raise PrepareError(
                    f"{path}: line {bad_line} is not valid UTF-8 ({error.reason} at "
                    f"byte {error.start}); save the file as UTF-8 and run prepare again"
                ) from error
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise PrepareError(
                f"{path}: the file ends inside a UTF-8 character; "
                "save it as UTF-8 and run prepare again"
            ) from error


def _reader_sql(spec: InputSpec) -> str:
    path = "'" + str(spec.path).replace("'", "''") + "'"
    if spec.format == "csv":
        # Every column as text, so keys like 007 keep their zeros.
        return (
            f"read_csv({path}, header = true, all_varchar = true, "
            "quote = '\"', escape = '\"', strict_mode = true, encoding = 'utf-8')"
        )
    if spec.format == "parquet":
        return f"read_parquet({path})"
    if spec.format == "jsonl":
        return f"read_json({path}, format = 'newline_delimited')"
    return f"read_json({path}, format = 'auto')"


def load_input(connection: duckdb.DuckDBPyConnection, spec: InputSpec) -> int:
    """Replace the table `spec.name` with the file's rows; return the row count."""
    if not spec.path.is_file():
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} not found; fix inputs.{spec.name}.path "
            "in the job file (paths are relative to the job file)"
        )
    if spec.format in ("csv", "json", "jsonl"):
        _check_utf8(spec.path)
    if spec.path.stat().st_size == 0:
        raise PrepareError(f"{spec.path}: input {spec.name!r} is empty; add rows to it")
    table = f'"{spec.name}"'
    try:
        connection.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {_reader_sql(spec)}"
        )
    except duckdb.Error as error:
        raise PrepareError(
            f"{spec.path}: cannot read input {spec.name!r} as {spec.format}: {error}"
        ) from error
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    count = int(row[0]) if row else 0
    if count == 0:
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} has no rows; add rows or remove the input"
        )
    _check_column_names(connection, spec)
    return count


def _check_column_names(connection: duckdb.DuckDBPyConnection, spec: InputSpec) -> None:
    columns = [
        row[0] for row in connection.execute(f'DESCRIBE "{spec.name}"').fetchall()
    ]
    for column in columns:
        if "\ufeff" in column:
            raise PrepareError(
                f"{spec.path}: column {column!r} starts with a byte-order mark that "
                "could not be removed; save the file as UTF-8 without BOM"
            )
