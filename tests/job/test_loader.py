"""The job-file loader: valid files build a Job, invalid ones list every problem."""

from pathlib import Path

import pytest

from batchkit.job.errors import JobError
from batchkit.job.loader import load_job

BASE = """
[job]
name = "small"

[inputs]
products = "products.csv"

[items]
query = "SELECT * FROM products"
key = ["id"]

[provider]
model = "m"

[[stages]]
name = "doc_en"
messages = [{ role = "user", text = "Hi {{ item.name }}" }]
"""


def _write(directory: Path, text: str) -> Path:
    path = directory / "job.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(directory: Path, text: str) -> str:
    with pytest.raises(JobError) as raised:
        load_job(_write(directory, text))
    return str(raised.value)


def test_minimal_job_gets_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BATCHKIT_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)

    job = load_job(_write(tmp_path, BASE))

    assert job.name == "small"
    assert job.run_dir == tmp_path / "runs" / "small"
    assert job.inputs[0].path == tmp_path / "products.csv"
    assert job.inputs[0].format == "csv"
    assert job.provider.batch.max_lines == 50_000
    assert job.provider.batch.max_bytes == 200_000_000
    stage = job.stage("doc_en")
    assert stage.model == "m"
    assert stage.max_tokens == 1024
    assert stage.depends_on is None


def test_runs_variable_moves_output(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BATCHKIT_RUNS", str(tmp_path / "elsewhere"))

    job = load_job(_write(tmp_path, BASE))

    assert job.run_dir == tmp_path / "elsewhere" / "small"


def test_template_file_is_relative_to_job(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "user.j2").write_text("Hello {{ item.name }}")
    text = BASE.replace('text = "Hi {{ item.name }}"', 'file = "prompts/user.j2"')

    job = load_job(_write(tmp_path, text))

    message = job.stage("doc_en").messages[0]
    assert message.template == "Hello {{ item.name }}"
    assert message.origin == str(tmp_path / "prompts" / "user.j2")


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(JobError, match=r"nope\.toml: job file not found; pass one"):
        load_job(tmp_path / "nope.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    message = _problems(tmp_path, BASE + "\n[broken\n")

    assert "job.toml: invalid TOML" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'model = "m"',
            'model = "m"\nrpm = -5',
            "provider.rpm = -5: must be a positive whole number of requests per minute",
        ),
        (
            'model = "m"',
            'model = "m"\napi_key = "sk-secret"',
            "provider.api_key = '(hidden)': keys do not belong in the job file",
        ),
        (
            'products = "products.csv"',
            'products = "products.xlsx"',
            "inputs.products.format = (missing): set one of csv, parquet, json, jsonl",
        ),
        (
            'products = "products.csv"',
            'requests = "products.csv"',
            "inputs.requests = 'requests': invalid table name",
        ),
        ('key = ["id"]', "key = []", "items.key = (missing): list the columns"),
        (
            'name = "doc_en"',
            'name = "doc_en"\nmax_tokens = 0',
            "stages[0].max_tokens = 0: must be a positive whole number of tokens",
        ),
        (
            'name = "doc_en"',
            'name = "doc_en"\ndepends_on = "doc_en"',
            "dependency cycle doc_en -> doc_en",
        ),
        (
            'role = "user"',
            'role = "robot"',
            "stages[0].messages[0].role = 'robot': must be one of",
        ),
        (
            'text = "Hi {{ item.name }}"',
            'file = "missing.j2"',
            "stages[0].messages[0].file = 'missing.j2': template file not found",
        ),
        ("[items]", "[itemz]\n[items]", "itemz = '...': unknown section"),
    ],
    ids=[
        "negative_rpm",
        "api_key_in_file",
        "unknown_format",
        "reserved_table",
        "empty_key",
        "zero_max_tokens",
        "self_dependency",
        "bad_role",
        "missing_template_file",
        "unknown_section",
    ],
)
def test_invalid_value_is_named(tmp_path: Path, old: str, new: str, expected: str):
    assert old in BASE
    message = _problems(tmp_path, BASE.replace(old, new, 1))

    assert expected in message
    assert str(tmp_path / "job.toml") in message


def test_secret_never_in_message(tmp_path: Path) -> None:
    text = BASE.replace('model = "m"', 'model = "m"\napi_key = "sk-secret-123"')

    message = _problems(tmp_path, text)

    assert "sk-secret-123" not in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = BASE.replace('model = "m"', 'model = "m"\nrpm = 0\nconcurrency = -1')

    message = _problems(tmp_path, text)

    assert message.startswith("the job file has 2 problems:")
    assert "provider.rpm = 0" in message
    assert "provider.concurrency = -1" in message


def test_duplicate_stage_name(tmp_path: Path) -> None:
    stage = BASE[BASE.index("[[stages]]") :]

    message = _problems(tmp_path, BASE + stage)

    assert "stages[1].name = 'doc_en': another stage has this name" in message


def test_unknown_stage_key_is_named(tmp_path: Path) -> None:
    text = BASE.replace('name = "doc_en"', 'name = "doc_en"\ndepend_on = "x"')

    message = _problems(tmp_path, text)

    assert "stages[0].depend_on" in message
    assert "unknown key" in message


def test_price_entry_must_be_table(tmp_path: Path) -> None:
    message = _problems(tmp_path, 'prices = ["cheap"]\n' + BASE)

    assert "prices[0] = 'cheap': must be a table" in message


def test_min_chars_above_max_chars(tmp_path: Path) -> None:
    text = BASE + "\n[stages.validate]\nmin_chars = 500\nmax_chars = 100\n"

    message = _problems(tmp_path, text)

    assert "stages[0].validate.min_chars = 500: is larger than max_chars" in message
