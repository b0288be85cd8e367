"""`batchkit status`, `sql` and `report` as a user runs them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batchkit.cli import analysis as analysis_cli
from batchkit.cli import common
from batchkit.cli.main import app, main
from tests.analysis.runs import AnalysisRun, build_analysis_run, write_job
from tests.analysis.test_live import open_log, wal_rows

ANALYSIS_COMMANDS = ("status", "sql", "report")


def run_cli(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int = 140,
) -> tuple[int, str, str]:
    """Run batchkit in this process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["batchkit", *args])
    # main() registers the command modules on every call; undo it afterwards.
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    monkeypatch.setattr(common.stdout, "width", width)
    monkeypatch.setattr(common.stderr, "width", width)
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row_pattern(*cells: str) -> re.Pattern[str]:
    """Match one table row with these cells in order."""
    return re.compile(r"\s*│\s*".join(re.escape(cell) for cell in cells))


def test_status_prints_table(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, err = run_cli(
        ["status", "-j", str(analysis_run.job.path)], capsys, monkeypatch
    )
    assert code == 0, err
    # Columns: stage, total, pending, ok, failed, rejected, loaded.
    assert row_pattern("summary", "4", "0", "1", "1", "1", "1").search(out)
    assert row_pattern("title", "4", "2", "2", "0", "0", "0").search(out)
    assert row_pattern("total", "8", "2", "3", "1", "1", "1").search(out)
    # Columns: stage, spent USD, est. max USD, spent share.
    assert row_pattern("summary", "0.0016", "0.0017", "99%").search(out)
    assert row_pattern("total", "0.0018").search(out)
    assert "spend: 0.0018 USD of the estimated max" in out
    assert "4 requests left, no ETA (last attempt 2025-06-03 10:00 UTC)" in out
    assert "1 ok results are not checked yet" in out
    assert row_pattern("server", "1", "0", "server: injected").search(out)


def test_status_fits_80_columns(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, err = run_cli(
        ["status", "-j", str(analysis_run.job.path)], capsys, monkeypatch, width=80
    )
    assert code == 0, err
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for header in ("pending", "rejected", "loaded", "error type", "attempts"):
        assert header in out, header
    assert row_pattern("summary", "4", "0", "1", "1", "1", "1").search(out)
    assert row_pattern("server", "1", "0", "server: injected").search(out)


def test_status_json(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(
        ["status", "-j", str(analysis_run.job.path), "--json"], capsys, monkeypatch
    )
    assert code == 0
    data = json.loads(out)
    assert data["totals"]["total"] == 8
    assert data["stages"][0]["rejected"] == 1
    assert data["remaining"] == 4


def test_sql_table(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, err = run_cli(
        [
            "sql",
            "-j",
            str(analysis_run.job.path),
            "SELECT stage, total, pending FROM progress",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert "┃ stage   ┃ total ┃ pending ┃" in out
    assert row_pattern("summary", "4", "0").search(out)
    assert row_pattern("title", "4", "2").search(out)
    assert err.strip() == "2 rows"


def test_sql_csv(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(
        [
            "sql",
            "-j",
            str(analysis_run.job.path),
            "--format",
            "csv",
            "SELECT custom_id, error_type, is_exhausted FROM failures",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert out == "custom_id,error_type,is_exhausted\nsummary:4,server,False\n"


def test_sql_json(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(
        [
            "sql",
            "-j",
            str(analysis_run.job.path),
            "-f",
            "json",
            "SELECT reason_name, checked_at IS NOT NULL AS checked FROM rejects "
            "ORDER BY 1",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert json.loads(out) == [
        {"reason_name": "finish_reason", "checked": True},
        {"reason_name": "too_short", "checked": True},
    ]


def test_sql_without_query_lists_views(
    analysis_run: AnalysisRun, capsys, monkeypatch
) -> None:
    code, out, _ = run_cli(
        ["sql", "-j", str(analysis_run.job.path)], capsys, monkeypatch
    )
    assert code == 0
    assert f"duckdb -readonly {analysis_run.job.db_path}" in out
    assert (
        "  progress: stage, total, pending, failed, ok, rejected, loaded, unchecked"
        in out
    )
    for view in ("costs", "failures", "rejects", "latency", "retries"):
        assert f"\n  {view}: " in out
    tables = out.split("\ntables:\n")[1]
    assert "  items: item_key, item, prepared_at\n" in tables
    assert "  products: id, name\n" in tables  # the job's input
    assert "item->>'product_id'" in out


def test_sql_reads_wal_rows(tmp_path: Path, capsys, monkeypatch) -> None:
    run = build_analysis_run(tmp_path)
    query = "SELECT pending, ok, failed FROM progress WHERE stage = 'title'"
    with open_log(run) as log:
        for row in wal_rows(run):
            log.append(row)
        code, out, err = run_cli(
            ["sql", "-j", str(run.job.path), "-f", "csv", query], capsys, monkeypatch
        )
    assert code == 0, err
    assert out == "pending,ok,failed\n0,3,1\n"
    assert "2 attempts were read from execute's write-ahead log" in err


def test_sql_bad_query(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, out, err = run_cli(
        ["sql", "-j", str(analysis_run.job.path), "SELECT * FROM progres"],
        capsys,
        monkeypatch,
    )
    message = " ".join(err.split())  # rich wraps long lines
    assert code == 1
    assert out == ""
    assert message.startswith(
        "Error: query failed: Catalog Error: Table with name progres does not exist!"
    )
    assert 'Did you mean "progress"' in message
    assert "the query was: 'SELECT * FROM progres'" in message


def test_sql_cannot_write(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    code, _, err = run_cli(
        ["sql", "-j", str(analysis_run.job.path), "DELETE FROM verdicts"],
        capsys,
        monkeypatch,
    )
    assert code == 1
    assert "read-only" in err


def test_status_before_prepare(tmp_path: Path, capsys, monkeypatch) -> None:
    job = write_job(tmp_path)
    code, _, err = run_cli(["status", "-j", str(job.path)], capsys, monkeypatch)
    assert code == 1
    assert err.startswith(f"Error: {job.db_path}: no job database yet")


def test_report_writes_file(
    analysis_run: AnalysisRun, tmp_path: Path, capsys, monkeypatch
) -> None:
    target = tmp_path / "out" / "report.html"
    code, _, err = run_cli(
        ["report", "-j", str(analysis_run.job.path), "-o", str(target)],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert target.exists()
    assert err.startswith(f"report: {target} (")


@pytest.mark.parametrize("command", ANALYSIS_COMMANDS)
def test_analysis_command_help(command: str, capsys, monkeypatch) -> None:
    code, out, _ = run_cli([command, "--help"], capsys, monkeypatch)
    assert code == 0
    assert "Example" in out
    assert "--job" in out


def test_every_command_has_help(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["--help"], capsys, monkeypatch)
    assert code == 0
    listed = re.findall(r"^│ (\w+) +\S", out.split("Commands")[1], re.MULTILINE)
    assert set(ANALYSIS_COMMANDS) <= set(listed)
    for name in listed:
        code, out, _ = run_cli([name, "--help"], capsys, monkeypatch)
        assert code == 0, name
        assert f"Usage: batchkit {name}" in out, name
        summary = out.split("Usage:")[1].splitlines()[2].strip()
        assert summary, f"{name} has no help summary"


def test_status_executable(analysis_run: AnalysisRun) -> None:
    executable = Path(sys.executable).with_name("batchkit")
    result = subprocess.run(
        [str(executable), "status", "-j", str(analysis_run.job.path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "140"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "requests by status" in result.stdout


def test_status_watch_repeats(analysis_run: AnalysisRun, capsys, monkeypatch) -> None:
    pauses = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises

    monkeypatch.setattr(analysis_cli, "sleep", sleep)
    code, out, _ = run_cli(
        ["status", "-j", str(analysis_run.job.path), "--watch", "5"],
        capsys,
        monkeypatch,
    )
    assert code == 130
    assert pauses == [5.0, 5.0]
    assert out.count("requests by status") == 2


def test_sql_table_shows_text_verbatim(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from batchkit.cli.main import _register_commands, app
    from tests.execute.jobfiles import prepared_job

    job = prepared_job(tmp_path, ["hello"])
    _register_commands(["sql"])
    monkeypatch.setenv("COLUMNS", "200")
    query = "SELECT 'see [docs](http://x) and arr[i] and a:x:b' AS text"
    result = CliRunner().invoke(app, ["sql", "-j", str(job.path), query])
    assert result.exit_code == 0, result.output
    assert "see [docs](http://x) and arr[i] and a:x:b" in result.output
