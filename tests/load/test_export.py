"""Parquet export, target choice and the `load` and `schema` commands."""

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from batchkit.cli.main import app
from batchkit.load.errors import LoadError
from batchkit.load.run import choose_target, load_results, target_schema
from tests.load.conftest import DB_URL_ENV, REST_KEY_ENV, REST_URL_ENV, add_results


@pytest.fixture
def runner() -> CliRunner:
    from batchkit.cli.main import _register_commands

    _register_commands()
    return CliRunner()


def test_parquet_export_wide(make_job, monkeypatch) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    job = make_job(3, target=None, layout="wide")
    add_results(job, "doc_zh", {"2": "too short"})
    summary = load_results(job)
    table = pq.read_table(summary.export_path)
    rows = table.select(["product_id", "content_en", "content_zh"]).to_pylist()
    assert summary.kind == "parquet"
    assert summary.export_path == job.export_dir / "docs.parquet"
    assert summary.rows_sent == 3
    assert [row["product_id"] for row in rows] == ["1", "2", "3"]
    # The newest doc_zh result of item 2 is rejected, so it has no valid one.
    assert rows[0]["content_zh"] is not None
    assert rows[1]["content_zh"] is None
    assert summary.stages["doc_zh"].rejected == 1
    assert table.schema.field("content_en_prompt_tokens").type == "int64"
    assert str(table.schema.field("content_en_generated_at").type) == (
        "timestamp[us, tz=UTC]"
    )


def test_parquet_export_long_rewrites(make_job) -> None:
    job = make_job(2, target="parquet", layout="long")
    load_results(job)
    summary = load_results(job)
    assert summary.rows_sent == 4
    assert summary.stages["doc_en"].exported == 2
    assert summary.stages["doc_en"].inserts == 0
    assert summary.stages["doc_en"].unchanged == 0
    assert pq.read_table(summary.export_path).num_rows == 4


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        (None, {}, "parquet"),
        (None, {DB_URL_ENV: "postgresql://h/db"}, "postgres"),
        (None, {REST_URL_ENV: "http://h", REST_KEY_ENV: "k"}, "rest"),
        (None, {REST_URL_ENV: "http://h"}, "parquet"),
        ("parquet", {DB_URL_ENV: "postgresql://h/db"}, "parquet"),
    ],
)
def test_choose_target(make_job, monkeypatch, configured, env, expected) -> None:
    for name in (DB_URL_ENV, REST_URL_ENV, REST_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job = make_job(1, zh=False, target=configured)
    assert choose_target(job) == expected


def test_missing_url_names_variable(make_job, monkeypatch) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    job = make_job(1, zh=False, target="postgres")
    with pytest.raises(LoadError, match=f"variable {DB_URL_ENV} is not set"):
        load_results(job)


def test_unknown_target_rejected(make_job) -> None:
    job = make_job(1, zh=False)
    with pytest.raises(LoadError, match="must be postgres, rest or parquet"):
        choose_target(job, "mysql")


def test_schema_before_prepare(tmp_path) -> None:
    from tests.load.conftest import write_job

    job = write_job(tmp_path, 1, layout="long")
    script = target_schema(job)
    assert 'CREATE TABLE IF NOT EXISTS "docs"' in script
    assert '"product_id" text NOT NULL' in script
    assert '("product_id", "stage")' in script


def test_cli_load_dry_run(make_job, runner, tmp_path) -> None:
    make_job(2, target="parquet", layout="long")
    result = runner.invoke(app, ["load", "-j", str(tmp_path / "job.toml"), "--dry-run"])
    output = " ".join(result.output.split())  # undo rich's line wrapping
    assert result.exit_code == 0, result.output
    assert "doc_en" in output
    assert "4 long rows would be written to" in output
    assert not (tmp_path / "run" / "export").exists()


def test_cli_load_parquet(make_job, runner, tmp_path) -> None:
    make_job(2, target="parquet", layout="long")
    result = runner.invoke(app, ["load", "-j", str(tmp_path / "job.toml")])
    assert result.exit_code == 0, result.output
    assert "wrote 4 long rows to" in result.output


def test_cli_parquet_second_export(make_job, runner, tmp_path) -> None:
    make_job(2, target=None, layout="wide")
    job_file = str(tmp_path / "job.toml")
    runner.invoke(app, ["load", "-j", job_file])
    result = runner.invoke(app, ["load", "-j", job_file])
    output = " ".join(result.output.split())  # undo rich's line wrapping
    assert result.exit_code == 0, result.output
    assert "exported" in output
    assert "inserts" not in output
    assert "updates" not in output
    assert "rewritten in full" in output
    # The hint names the job's own variables, not the defaults.
    assert DB_URL_ENV in output
    assert REST_URL_ENV in output
    assert REST_KEY_ENV in output
    assert "SUPABASE_DB_URL" not in output


def test_cli_schema(make_job, runner, tmp_path) -> None:
    make_job(1, zh=False, layout="wide")
    result = runner.invoke(app, ["schema", "-j", str(tmp_path / "job.toml")])
    assert result.exit_code == 0, result.output
    assert '"content_zh_hash" text' in result.output
    assert 'CREATE UNIQUE INDEX IF NOT EXISTS "docs_batchkit_key"' in result.output


@pytest.mark.parametrize("command", ["load", "schema"])
def test_cli_help(runner, command) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_cli_error_is_one_line(make_job, tmp_path) -> None:
    make_job(1, zh=False, target="postgres")
    env = {k: v for k, v in os.environ.items() if k != DB_URL_ENV}
    result = run_cli("load", "-j", str(tmp_path / "job.toml"), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert f"variable {DB_URL_ENV} is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_cli_load_postgres(make_job, tmp_path, postgres_url) -> None:
    make_job(2, target="postgres", layout="wide")
    env = {**os.environ, DB_URL_ENV: postgres_url}
    job_file = str(tmp_path / "job.toml")
    first = run_cli("load", "-j", job_file, "--create-table", env=env)
    second = run_cli("load", "-j", job_file, env=env)
    assert first.returncode == 0, first.stderr
    assert "2 inserted, 0 updated" in first.stderr
    assert "sent 0 rows" in second.stderr
    assert postgres_url not in first.stdout + first.stderr


@pytest.mark.postgres
def test_cli_full_reports_resent(make_job, tmp_path, postgres_url) -> None:
    import psycopg

    make_job(2, target="postgres", layout="wide")
    env = {**os.environ, DB_URL_ENV: postgres_url}
    job_file = str(tmp_path / "job.toml")
    run_cli("load", "-j", job_file, "--create-table", env=env)
    with psycopg.connect(postgres_url) as connection:
        connection.execute("DELETE FROM docs WHERE product_id = '1'")
        connection.execute("UPDATE docs SET content_en = 'tampered'")
    result = run_cli("load", "-j", job_file, "--full", env=env)
    assert result.returncode == 0, result.stderr
    assert "resent" in result.stdout
    assert "unchanged" not in result.stdout
    assert "sent 2 rows" in result.stderr
    assert "1 inserted, 1 updated" in result.stderr
