"""Status reads attempts still in execute's write-ahead log, once each."""

from pathlib import Path

import duckdb

from batchkit.analysis.live import read_wal_rows
from batchkit.analysis.query import run_query
from batchkit.analysis.status import read_status
from batchkit.execute.responselog import ResponseLog, new_run_id
from tests.analysis.runs import AnalysisRun, build_analysis_run


def wal_rows(run: AnalysisRun) -> list[dict]:
    """Two attempts for the pending title:3 and title:4, not in Parquet yet."""
    return [
        run.add("title:3", 1, "2025-06-04T10:00:00", content="Gamma, a title"),
        run.add(
            "title:4", 1, "2025-06-04T10:00:01", status="failed", error_type="timeout"
        ),
    ]


def open_log(run: AnalysisRun) -> ResponseLog:
    """Open a response log that compacts only when it is closed."""
    return ResponseLog(run.job, new_run_id(), compact_rows=100, compact_seconds=3600)


def title_counts(run: AnalysisRun) -> tuple[int, int, int]:
    """Return (pending, ok, failed) of the title stage."""
    title = read_status(run.job).stages[1]
    return title.pending, title.ok, title.failed


def test_status_counts_wal_rows(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    assert title_counts(run) == (2, 2, 0)
    with open_log(run) as log:
        for row in wal_rows(run):
            log.append(row)
        status = read_status(run.job)
        assert status.uncompacted_attempts == 2
        assert title_counts(run) == (0, 3, 1)
    # Closing the log compacted the rows into Parquet and removed the WAL.
    assert read_status(run.job).uncompacted_attempts == 0
    assert title_counts(run) == (0, 3, 1)


def test_wal_rows_in_parquet_count_once(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    rows = wal_rows(run)
    with open_log(run) as log:
        for row in rows:
            log.append(row)
        # As after a crash between writing a part and emptying the WAL.
        run.write_part("part-overlap", rows)
        status = read_status(run.job)
        assert title_counts(run) == (0, 3, 1)
        assert status.totals.total == 8


def test_torn_wal_line_skipped(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    with open_log(run) as log:
        log.append(wal_rows(run)[0])
        with log.wal_path.open("ab") as handle:
            handle.write(b'{"attempt_id": "title:4#torn", "custom_id": "ti')
        status = read_status(run.job)
        assert status.uncompacted_attempts == 1
        assert title_counts(run) == (1, 3, 0)


def test_temp_view_shadows_in_stored_views(tmp_path: Path) -> None:
    path = tmp_path / "shadow.duckdb"
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE numbers AS SELECT 1 AS n")
    connection.execute("CREATE VIEW source AS SELECT * FROM numbers")
    connection.execute("CREATE VIEW total AS SELECT sum(n) AS n FROM source")
    connection.close()
    reader = duckdb.connect(str(path), read_only=True)
    reader.execute(
        "CREATE TEMP VIEW source AS "
        "SELECT * FROM shadow.main.source UNION ALL SELECT 41"
    )
    assert reader.execute("SELECT n FROM total").fetchall() == [(42,)]
    reader.close()


def test_removed_wal_file_reads_empty(tmp_path: Path) -> None:
    # execute removes a WAL file after compacting it, possibly between the
    # reader's directory listing and its read.
    assert read_wal_rows(tmp_path / "compacted.jsonl") == []


def test_query_counts_wal_rows(tmp_path: Path) -> None:
    run = build_analysis_run(tmp_path)
    query = "SELECT count(*) FROM attempts WHERE stage = 'title'"
    assert run_query(run.job, query).rows == [(3,)]
    with open_log(run) as log:
        for row in wal_rows(run):
            log.append(row)
        result = run_query(run.job, query)
    assert result.rows == [(5,)]
    assert result.uncompacted_attempts == 2
