"""Write each stage's current requests as provider batch files (JSONL)."""

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from batchkit.job.model import BatchLimits

FETCH_ROWS = 2_000


@dataclass
class BatchFileSet:
    """The files written for one stage, and the requests too large for any file."""

    stage: str
    files: list[Path] = field(default_factory=list)
    lines: int = 0
    oversized: list[str] = field(default_factory=list)


def split_lines(
    lines: Iterable[tuple[str, str]], limits: BatchLimits
) -> Iterator[list[tuple[str, str]]]:
    """Group (custom_id, line) pairs into files within the line and byte limits.

    A line larger than the byte limit alone is yielded as a group of one, and
    the caller decides what to do with it.
    """
    group: list[tuple[str, str]] = []
    size = 0
    for custom_id, line in lines:
        line_size = len(line.encode()) + 1
        full = len(group) >= limits.max_lines or size + line_size > limits.max_bytes
        if group and full:
            yield group
            group, size = [], 0
        group.append((custom_id, line))
        size += line_size
    if group:
        yield group


def _stream_stage(
    connection: duckdb.DuckDBPyConnection, stage: str
) -> Iterator[tuple[str, str]]:
    cursor = connection.execute(
        "SELECT custom_id, line FROM requests WHERE stage = ? ORDER BY custom_id",
        [stage],
    )
    while rows := cursor.fetchmany(FETCH_ROWS):
        yield from rows


def write_stage_files(
    connection: duckdb.DuckDBPyConnection,
    stage: str,
    directory: Path,
    limits: BatchLimits,
) -> BatchFileSet:
    """Replace `directory` with the stage's batch files, written beside it first."""
    result = BatchFileSet(stage=stage)
    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    number = 0
    for group in split_lines(_stream_stage(connection, stage), limits):
        if len(group) == 1 and len(group[0][1].encode()) + 1 > limits.max_bytes:
            result.oversized.append(group[0][0])
            continue
        number += 1
        path = staging / f"{stage}-{number:05d}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for _, line in group:
                handle.write(line)
                handle.write("\n")
        result.files.append(directory / path.name)
        result.lines += len(group)
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return result
