"""The response log's write-ahead file and its compaction into Parquet parts.

Every attempt is appended as one JSON line to `responses/wal/<run_id>.jsonl`
and flushed to the operating system before `append` returns, so killing the
process loses nothing appended (a power cut can still lose what the OS had not
written). Rows are compacted into one zstd Parquet part with RESPONSE_SCHEMA
every `compact_rows` rows or `compact_seconds` seconds and on close. A part is
written under a `.parquet.tmp` name and renamed, so readers of
`responses/*.parquet` never see half a file.

A live log keeps an exclusive `flock` on its WAL file, so `recover` in another
process leaves it alone. After a crash the lock is gone and `recover`
compacts what the WAL holds, skipping rows already in the run's parts (the
crash may have come between writing a part and emptying the WAL).
"""

import fcntl
import logging
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.job.model import Job
from batchkit.store.responses import (
    RESPONSE_COLUMNS,
    RESPONSE_SCHEMA,
    ensure_schema_part,
)

logger = logging.getLogger(__name__)

TIMESTAMP_COLUMNS = tuple(
    field.name for field in RESPONSE_SCHEMA if pa.types.is_timestamp(field.type)
)
_KNOWN_COLUMNS = frozenset(RESPONSE_COLUMNS)


def new_run_id() -> str:
    """Return a new run id that sorts by start time: `20261204T164603Z-3fa9c1`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def _part_path(responses_dir: Path, run_id: str, sequence: int) -> Path:
    return responses_dir / f"part-{run_id}-{sequence:06d}.parquet"


def _run_parts(responses_dir: Path, run_id: str) -> list[Path]:
    return sorted(responses_dir.glob(f"part-{run_id}-*.parquet"))


def _next_sequence(responses_dir: Path, run_id: str) -> int:
    parts = _run_parts(responses_dir, run_id)
    if not parts:
        return 1
    return int(parts[-1].stem.rsplit("-", 1)[1]) + 1


def _to_timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def write_part(rows: list[dict[str, Any]], path: Path) -> None:
    """Write `rows` as one zstd Parquet part with RESPONSE_SCHEMA, atomically."""
    for row in rows:
        for column in TIMESTAMP_COLUMNS:
            row[column] = _to_timestamp(row.get(column))
    table = pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA)
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(table, temporary, compression="zstd")
    with open(temporary, "rb") as written:
        # The WAL is emptied right after the rename, so the part must be on disk.
        os.fsync(written.fileno())
    temporary.replace(path)


def _open_locked(path: Path) -> IO[bytes]:
    """Open `path` for appending and lock it, as the file that is at `path`.

    `recover` in another process may lock and delete a WAL file between our
    open and our lock, so the lock counts only if the path still names the
    file we opened.
    """
    while True:
        handle = open(path, "ab")  # noqa: SIM115
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


class ResponseLog:
    """The append-only log of one run's attempts: a WAL plus Parquet parts."""

    def __init__(
        self,
        job: Job,
        run_id: str,
        *,
        compact_rows: int = 5000,
        compact_seconds: float = 30.0,
    ) -> None:
        self.job = job
        self.run_id = run_id
        self.compact_rows = compact_rows
        self.compact_seconds = compact_seconds
        self.rows_appended = 0
        self._pending: list[dict[str, Any]] = []
        self._first_pending_at = 0.0
        ensure_schema_part(job.responses_dir)
        job.wal_dir.mkdir(parents=True, exist_ok=True)
        self.wal_path = job.wal_dir / f"{run_id}.jsonl"
        self._sequence = _next_sequence(job.responses_dir, run_id)
        self._file: IO[bytes] | None = _open_locked(self.wal_path)

    def __enter__(self) -> "ResponseLog":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, record: dict[str, Any]) -> None:
        """Append one attempt; it is in the OS's hands when this returns.

        Keys must be response log columns; missing columns are stored as null.
        """
        if self._file is None:
            raise ValueError(f"the response log of run {self.run_id} is closed")
        unknown = record.keys() - _KNOWN_COLUMNS
        if unknown:
            raise ValueError(f"not response log columns: {', '.join(sorted(unknown))}")
        self._file.write(orjson.dumps(record) + b"\n")
        self._file.flush()
        if not self._pending:
            self._first_pending_at = time.monotonic()
        self._pending.append(dict(record))
        self.rows_appended += 1
        if self._is_due():
            self.compact()

    def _is_due(self) -> bool:
        if len(self._pending) >= self.compact_rows:
            return True
        age = time.monotonic() - self._first_pending_at
        return age >= self.compact_seconds

    def compact_if_due(self) -> Path | None:
        """Compact if the oldest uncompacted row is older than `compact_seconds`."""
        if self._pending and self._is_due():
            return self.compact()
        return None

    def compact(self) -> Path | None:
        """Write the rows appended since the last compaction as one Parquet part.

        Returns the part's path, or None when there was nothing to write.
        """
        if not self._pending or self._file is None:
            return None
        path = _part_path(self.job.responses_dir, self.run_id, self._sequence)
        write_part(self._pending, path)
        self._sequence += 1
        self._pending = []
        self._file.truncate(0)
        logger.debug("compacted run %s into %s", self.run_id, path.name)
        return path

    def close(self) -> None:
        """Compact what is left, then remove the empty WAL file."""
        if self._file is None:
            return
        self.compact()
        self.wal_path.unlink(missing_ok=True)
        self._file.close()  # closing releases the lock
        self._file = None


def _read_wal(path: Path) -> list[dict[str, Any]]:
    rows = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            where = "its torn last line" if number == len(lines) else f"line {number}"
            logger.warning("%s: skipped %s, which is not valid JSON", path, where)
            continue
        rows.append({key: row.get(key) for key in RESPONSE_COLUMNS})
    return rows


def _existing_attempt_ids(responses_dir: Path, run_id: str) -> set[str]:
    found: set[str] = set()
    for part in _run_parts(responses_dir, run_id):
        column = pq.read_table(part, columns=["attempt_id"]).column(0)
        found.update(column.to_pylist())
    return found


def _recover_wal(job: Job, path: Path) -> int:
    with open(path, "rb+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live run in another process owns this file
        run_id = path.stem
        done = _existing_attempt_ids(job.responses_dir, run_id)
        rows = [row for row in _read_wal(path) if row["attempt_id"] not in done]
        if rows:
            sequence = _next_sequence(job.responses_dir, run_id)
            write_part(rows, _part_path(job.responses_dir, run_id, sequence))
            logger.warning(
                "recovered %s attempts of run %s from its write-ahead log",
                len(rows),
                run_id,
            )
        path.unlink()
    return len(rows)


def set_aside_unreadable_parts(responses_dir: Path) -> list[Path]:
    """Rename Parquet parts whose footer or schema cannot be read to `.corrupt`.

    Their attempts then count as not done, so those requests are sent again.
    NOTE: only the footer is read, so damage inside a data page shows up later,
    when DuckDB reads the part.
    """
    moved = []
    for part in sorted(responses_dir.glob("*.parquet")):
        try:
            schema = pq.read_schema(part)
        except (OSError, pa.ArrowException) as error:
            problem = str(error)
        else:
            missing = set(RESPONSE_COLUMNS) - set(schema.names)
            if not missing:
                continue
            problem = f"missing columns {', '.join(sorted(missing))}"
        target = part.with_name(part.name + ".corrupt")
        part.replace(target)
        moved.append(target)
        logger.warning(
            "set aside the unreadable response part %s as %s (%s); its requests "
            "count as not done and will be sent again",
            part,
            target.name,
            problem,
        )
    return moved


def recover(job: Job) -> int:
    """Compact WAL files left by crashed runs and set aside unreadable parts.

    Returns the number of attempts recovered from WAL files.
    """
    job.responses_dir.mkdir(parents=True, exist_ok=True)
    set_aside_unreadable_parts(job.responses_dir)
    ensure_schema_part(job.responses_dir)
    recovered = 0
    if job.wal_dir.exists():
        for path in sorted(job.wal_dir.glob("*.jsonl")):
            recovered += _recover_wal(job, path)
    return recovered
