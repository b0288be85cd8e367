"""The smoke jobs against a real OpenAI-compatible server (make test-llm).

scripts/test-llm.sh starts llama.cpp's llama-server with Gemma 3 270M on
127.0.0.1 and sets BATCHKIT_LLM_BASE_URL. The model is a base model: it rarely
stops by itself and follows no instructions, so these tests check the wire
(usage, queueing, a 400 for a too-long prompt, no batch API) and the
validation that rejects such output, not the writing.
"""

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

pytestmark = pytest.mark.llm

REPO = Path(__file__).resolve().parents[2]
BASE_URL = os.environ.get("BATCHKIT_LLM_BASE_URL")
CONTEXT_TOKENS = int(os.environ.get("BATCHKIT_LLM_CONTEXT", "2048"))
PRODUCTS = ("cursor", "kling", "perplexity")
LONG_PRODUCT = "long-context-probe"

if BASE_URL is None:
    pytest.skip(
        "BATCHKIT_LLM_BASE_URL is not set; run `make test-llm`",
        allow_module_level=True,
    )


def _write_job(tmp_path: Path, job_name: str) -> Path:
    """Copy a smoke job into tmp_path, adding a product whose prompt overflows."""
    source = REPO / "jobs" / job_name / "job.toml"
    productmind = REPO / "jobs" / "productmind"
    with (productmind / "data" / "projects.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["id"] in PRODUCTS]
    long_description = "An assistant that drafts long documents. " * (
        CONTEXT_TOKENS // 2
    )
    rows.append(
        {
            **rows[0],
            "id": LONG_PRODUCT,
            "name": "Long Probe",
            "description": long_description,
        }
    )
    projects = tmp_path / "projects.csv"
    with projects.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = source.read_text(encoding="utf-8")
    text = text.replace('"../productmind/data/projects.csv"', f'"{projects}"')
    text = text.replace('"../productmind/', f'"{productmind}/')
    text = text.replace("'perplexity')", f"'perplexity', '{LONG_PRODUCT}')")
    path = tmp_path / "job.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _batchkit(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "BATCHKIT_BASE_URL": str(BASE_URL),
        "LLM_API_KEY": "test-llm-key-not-checked",
        "BATCHKIT_RUNS": str(tmp_path / "runs"),
    }
    environment.pop("LLM_SMOKE_DB_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli.main", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=False,
    )


def _query(tmp_path: Path, job_name: str, sql: str) -> list[tuple]:
    database = tmp_path / "runs" / job_name / "batchkit.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _record(tmp_path: Path, name: str, facts: dict) -> None:
    # Kept beside the run so that the figures can be copied into the docs.
    out = REPO / "runs" / "llm-smoke-results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2))
    print(name, facts)


def test_smoke_job_wire_and_validation(tmp_path: Path) -> None:
    job = _write_job(tmp_path, "llm-smoke")
    started = time.monotonic()
    prepared = _batchkit(tmp_path, "prepare", "-j", str(job))
    assert prepared.returncode == 0, prepared.stderr

    executed = _batchkit(tmp_path, "execute", "-j", str(job))
    elapsed = time.monotonic() - started
    assert executed.returncode == 0, executed.stderr

    rows = _query(
        tmp_path,
        "llm-smoke",
        """
        SELECT custom_id, status, error_type, http_status, prompt_tokens,
               completion_tokens, finish_reason
        FROM attempts ORDER BY custom_id, started_at""",
    )
    normal = [row for row in rows if LONG_PRODUCT not in row[0]]
    long_rows = [row for row in rows if LONG_PRODUCT in row[0]]
    # 3 products × 2 templates, doc_en and mdc_en (both templates have a spec).
    assert len({row[0] for row in normal}) == 12
    # Queued beyond the server's slots, yet every request succeeded first time.
    assert all(row[1] == "ok" for row in normal)
    assert len(normal) == 12
    assert all(row[4] > 0 and row[5] > 0 for row in normal)
    # The too-long prompt is a 400 on its own rows, not retried.
    assert long_rows
    assert all(row[3] == 400 for row in long_rows)
    assert all(row[2] == "bad_request" for row in long_rows)

    batch = _batchkit(tmp_path, "execute", "-j", str(job), "--mode", "batch")
    assert batch.returncode == 1
    assert "batch" in batch.stderr.lower()
    assert "--mode stream" in batch.stderr

    loaded = _batchkit(tmp_path, "load", "-j", str(job))
    assert loaded.returncode == 0, loaded.stderr
    reasons = _query(
        tmp_path,
        "llm-smoke",
        """
        SELECT split_part(reason, ':', 1) AS name, count(*)
        FROM (SELECT unnest(reasons) AS reason FROM verdicts) GROUP BY 1""",
    )
    valid = _query(tmp_path, "llm-smoke", "SELECT count(*) FROM valid_results")
    ledger = _query(tmp_path, "llm-smoke", "SELECT count(*) FROM load_ledger")
    assert valid == [(0,)]
    assert ledger == [(0,)]
    assert reasons
    _record(
        tmp_path,
        "wire-and-validation",
        {
            "requests": len({row[0] for row in rows}),
            "attempts": len(rows),
            "seconds_prepare_and_execute": round(elapsed, 1),
            "completion_tokens": sum(row[5] or 0 for row in normal),
            "finish_reasons": sorted({str(row[6]) for row in normal}),
            "reject_reasons": dict(reasons),
            "batch_mode_message": batch.stderr.strip().splitlines()[-1],
        },
    )


def test_dependent_stages_render_from_real_output(tmp_path: Path) -> None:
    job = _write_job(tmp_path, "llm-smoke-novalidate")
    started = time.monotonic()
    for _ in range(2):
        assert _batchkit(tmp_path, "prepare", "-j", str(job)).returncode == 0
        result = _batchkit(tmp_path, "execute", "-j", str(job))
        assert result.returncode == 0, result.stderr
    elapsed = time.monotonic() - started

    pairs = _query(
        tmp_path,
        "llm-smoke-novalidate",
        """
        SELECT d.custom_id, d.line, s.content
        FROM requests d
        JOIN request_versions v ON v.custom_id = d.custom_id
            AND v.request_hash = d.request_hash
        JOIN attempts s ON s.attempt_id = v.source_attempt_id
        WHERE d.stage IN ('doc_zh', 'mdc_zh')""",
    )
    assert len(pairs) == 12
    for _, line, source_content in pairs:
        body = orjson.loads(line)["body"]
        prompt = "\n".join(message["content"] for message in body["messages"])
        assert source_content.strip()[:200] in prompt
    done = _query(
        tmp_path,
        "llm-smoke-novalidate",
        """
        SELECT stage, count(*) FROM results GROUP BY 1 ORDER BY 1""",
    )
    _record(
        tmp_path,
        "dependent-stages",
        {
            "results_per_stage": dict(done),
            "seconds_two_rounds": round(elapsed, 1),
        },
    )
    assert dict(done).get("doc_zh") == 6
    assert dict(done).get("mdc_zh") == 6
