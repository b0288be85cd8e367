"""`batchkit prepare` as a user runs it: a subprocess, its output and exit code."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prepare.jobfiles import write_job


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_prepare_prints_summary_in_80_columns(tmp_path: Path) -> None:
    path = write_job(tmp_path, with_zh=True)

    result = _run("prepare", "-j", str(path))

    assert result.returncode == 0, result.stderr
    assert "Requests per stage" in result.stdout
    assert "Estimate per stage" in result.stdout
    assert "doc_zh *" in result.stdout
    assert "inputs: products 3 rows; items: 3" in result.stderr
    assert "batch files: 1 under" in result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "…" not in result.stdout


def test_prepare_quiet_prints_nothing(tmp_path: Path) -> None:
    path = write_job(tmp_path)

    result = _run("prepare", "-j", str(path), "--quiet")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda d: (d / "products.csv").write_bytes(b'id,name\r\np1,"A\r\n'),
            "products.csv: line 2: invalid CSV",
        ),
        (
            lambda d: (d / "doc_en.j2").write_text("{{ item.colour }}"),
            "undefined template variable 'colour'",
        ),
        (
            lambda d: (d / "products.csv").write_bytes(b"id,name\r\np1,Caf\xe9\r\n"),
            "products.csv: line 2 is not valid UTF-8",
        ),
    ],
    ids=["broken_quote", "missing_variable", "not_utf8"],
)
def test_prepare_error_is_one_line_exit_1(tmp_path: Path, setup, expected) -> None:
    path = write_job(tmp_path)
    setup(tmp_path)

    result = _run("prepare", "-j", str(path))

    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "requests").exists()


def test_prepare_cycle_reports_job_file(tmp_path: Path) -> None:
    path = write_job(tmp_path, with_zh=True)
    text = path.read_text().replace(
        'name = "doc_en"\n', 'name = "doc_en"\ndepends_on = "doc_zh"\n'
    )
    path.write_text(text)

    result = _run("prepare", "-j", str(path))

    assert result.returncode == 1
    assert "dependency cycle doc_en -> doc_zh -> doc_en" in result.stderr
