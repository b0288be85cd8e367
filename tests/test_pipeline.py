"""batchkit run: prepare → execute rounds until nothing changes, then load."""

from pathlib import Path

import duckdb
import pytest

from batchkit.job.loader import load_job
from batchkit.pipeline import run_pipeline
from batchkit.simulate import SimulatorHandle

KEY_ENV = "BATCHKIT_PIPELINE_TEST_KEY"

JOB = """
[job]
name = "pipeline"
run_dir = "run"

[inputs]
products = "products.csv"

[items]
query = "SELECT * FROM products"
key = ["id"]

[provider]
base_url = "{base_url}"
model = "deepseek-chat"
api_key_env = "{key_env}"
rpm = 60000
concurrency = 16

[[stages]]
name = "doc_en"
messages = [
    {{ role = "user", text = "Describe {{{{ item.name }}}} in 300–600 characters." }},
]
max_tokens = 1000

[stages.validate]
language = "en"

[[stages]]
name = "doc_zh"
depends_on = "doc_en"
messages = [
    {{ role = "user", text = "翻译成简体中文：\\n\\n{{{{ source.content }}}}" }},
]
max_tokens = 2000

[stages.validate]
language = "zh"

[load]
target = "parquet"
layout = "long"
key = ["id"]
"""


@pytest.fixture
def job_path(
    tmp_path: Path, simulator: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv(KEY_ENV, simulator.api_key or "")
    (tmp_path / "products.csv").write_text(
        "id,name\np1,Alpha\np2,Beta\np3,Gamma\n", encoding="utf-8"
    )
    path = tmp_path / "job.toml"
    path.write_text(
        JOB.format(base_url=simulator.base_url, key_env=KEY_ENV), encoding="utf-8"
    )
    return path


def _count(job_path: Path, sql: str) -> list[tuple]:
    database = job_path.parent / "run" / "batchkit.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_run_renders_dependent_stage(job_path: Path) -> None:
    summary = run_pipeline(load_job(job_path))
    assert summary.stop_reason is None
    # Round 1 sends doc_en, round 2 doc_zh, round 3 finds nothing to do.
    assert [r.execute.selected for r in summary.rounds if r.execute] == [3, 3, 0]
    results = _count(
        job_path, "SELECT stage, count(*) FROM valid_results GROUP BY 1 ORDER BY 1"
    )
    assert results == [("doc_en", 3), ("doc_zh", 3)]
    assert summary.load is not None
    assert summary.load.export_path is not None
    assert summary.load.export_path.exists()


def test_run_again_sends_nothing(job_path: Path, simulator: SimulatorHandle) -> None:
    run_pipeline(load_job(job_path), load=False)
    served = simulator.stats()["requests"]
    summary = run_pipeline(load_job(job_path), load=False)
    assert len(summary.rounds) == 1
    assert summary.rounds[0].rendered == 0
    assert simulator.stats()["requests"] == served
