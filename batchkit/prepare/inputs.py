"""Check the job's input files and load them into DuckDB tables named after them."""

import csv
from pathlib import Path
from typing import Any

import duckdb

from batchkit.job.model import InputSpec, Job
from batchkit.prepare.errors import PrepareError, describe_duckdb_error

_TEXT_FORMATS = ("csv", "json", "jsonl")


def check_input_files(job: Job) -> None:
    """Check that every input exists, is not empty and is valid UTF-8 text or CSV.

    Runs before the job database is opened, so a bad file writes nothing.
    """
    for spec in job.inputs:
        _check_file(spec)


def _check_file(spec: InputSpec) -> None:
    if not spec.path.is_file():
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} not found; fix inputs.{spec.name}.path "
            "in the job file (paths are relative to the job file)"
        )
    if spec.path.stat().st_size == 0:
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} is empty (0 bytes); add rows to it "
            "or remove the input"
        )
    if spec.format in _TEXT_FORMATS:
        _check_utf8(spec.path)
    if spec.format == "csv":
        _check_csv(spec)


def _check_utf8(path: Path) -> None:
    """Raise PrepareError naming the first line that is not valid UTF-8."""
    # Splitting at b"\n" is safe: in UTF-8 that byte occurs only as a newline.
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise PrepareError(
                    f"{path}: line {number} is not valid UTF-8 ({error.reason} at "
                    f"byte {error.start + 1} of the line); save the file as UTF-8 "
                    "and run prepare again"
                ) from error


def _check_csv(spec: InputSpec) -> None:
    """Parse the CSV strictly (RFC 4180) and raise PrepareError at the first bad row.

    Line numbers are those where the bad row starts, since a quoted value may
    span lines.
    """
    with spec.path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = _next_row(spec, reader)
        if not header:
            raise PrepareError(
                f"{spec.path}: input {spec.name!r} has no header row; the first "
                "line must name the columns"
            )
        _check_header(spec, header)
        rows = 0
        while True:
            line = reader.line_num + 1
            row = _next_row(spec, reader)
            if row is None:
                break
            if not row:
                continue
            rows += 1
            if len(row) != len(header):
                raise PrepareError(
                    f"{spec.path}: line {line} has {len(row)} fields, the header "
                    f"has {len(header)}; quote values that contain commas and fix "
                    "the row"
                )
    if rows == 0:
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} has a header but no rows; add rows to "
            "it or remove the input"
        )


def _next_row(spec: InputSpec, reader: Any) -> list[str] | None:
    line = reader.line_num + 1
    try:
        return next(reader, None)
    except csv.Error as error:
        raise PrepareError(
            f"{spec.path}: line {line}: invalid CSV in the row that starts there "
            f'({error}); a quote inside a quoted value must be doubled ("") and '
            "every quoted value closed"
        ) from error


def _check_header(spec: InputSpec, header: list[str]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise PrepareError(
                f"{spec.path}: column {position} of the header has no name; "
                "name every column"
            )
        if name in seen:
            raise PrepareError(
                f"{spec.path}: the header names column {name!r} twice; "
                "give each column its own name"
            )
        seen.add(name)


def _reader_sql(spec: InputSpec) -> str:
    path = "'" + str(spec.path).replace("'", "''") + "'"
    if spec.format == "csv":
        # Every column as text, so keys like 007 keep their zeros. The dialect
        # is fixed so that DuckDB cannot fall back to reading a damaged file as
        # one column.
        return (
            f"read_csv({path}, header = true, delim = ',', quote = '\"', "
            "escape = '\"', all_varchar = true, strict_mode = true, "
            "encoding = 'utf-8')"
        )
    if spec.format == "parquet":
        return f"read_parquet({path})"
    if spec.format == "jsonl":
        return f"read_json({path}, format = 'newline_delimited')"
    return f"read_json({path}, format = 'auto')"


def load_input(connection: duckdb.DuckDBPyConnection, spec: InputSpec) -> int:
    """Replace the table `spec.name` with the file's rows; return the row count."""
    table = f'"{spec.name}"'
    try:
        connection.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {_reader_sql(spec)}"
        )
    except duckdb.Error as error:
        raise PrepareError(
            f"{spec.path}: cannot read input {spec.name!r} as {spec.format}: "
            f"{describe_duckdb_error(error)}; check that the file is valid "
            f"{spec.format}"
        ) from error
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    count = int(row[0]) if row else 0
    if count == 0:
        raise PrepareError(
            f"{spec.path}: input {spec.name!r} has no rows; add rows to it or "
            "remove the input"
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
