"""Items dropped from the items query stop being current requests."""

from pathlib import Path

import duckdb

from batchkit.job.loader import load_job
from batchkit.prepare.run import prepare_job

JOB = """
[job]
name = "retire"
run_dir = "run"

[inputs]
products = "products.csv"

[items]
query = "SELECT * FROM products WHERE id <= '{last}'"
key = ["id"]

[provider]
model = "m"
api_key_env = "RETIRE_TEST_KEY"

[[stages]]
name = "doc"
messages = [{{ role = "user", text = "Describe {{{{ item.name }}}}." }}]
"""


def _write(folder: Path, last: str) -> Path:
    (folder / "products.csv").write_text(
        "id,name\np1,Alpha\np2,Beta\np3,Gamma\n", encoding="utf-8"
    )
    path = folder / "job.toml"
    path.write_text(JOB.format(last=last), encoding="utf-8")
    return path


def _current(job_path: Path) -> list[str]:
    database = job_path.parent / "run" / "batchkit.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT item_key FROM requests ORDER BY item_key"
        ).fetchall()
    return [row[0] for row in rows]


def test_dropped_item_is_retired(tmp_path: Path) -> None:
    path = _write(tmp_path, "p3")
    prepare_job(load_job(path), write_files=False)
    assert _current(path) == ["p1", "p2", "p3"]

    path = _write(tmp_path, "p2")
    summary = prepare_job(load_job(path), write_files=False)
    assert summary.retired == {"doc": 1}
    assert _current(path) == ["p1", "p2"]


def test_limit_retires_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, "p3")
    prepare_job(load_job(path), write_files=False)
    summary = prepare_job(load_job(path), limit=1, write_files=False)
    assert summary.retired == {}
    assert _current(path) == ["p1", "p2", "p3"]


def test_item_back_in_query_is_current(tmp_path: Path) -> None:
    path = _write(tmp_path, "p3")
    prepare_job(load_job(path), write_files=False)
    prepare_job(load_job(_write(tmp_path, "p2")), write_files=False)
    summary = prepare_job(load_job(_write(tmp_path, "p3")), write_files=False)
    assert summary.stages["doc"].changed == 1
    assert _current(path) == ["p1", "p2", "p3"]
