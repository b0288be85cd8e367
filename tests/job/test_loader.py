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
    # pytest's temporary folders lie in no project, so runs/ is beside the job.
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


def _project_job(root: Path, marker: str) -> Path:
    """Write BASE to `root`/jobs/small/job.toml under a project root marker."""
    if marker in ("runs", ".git"):
        (root / marker).mkdir(parents=True)
    else:
        root.mkdir(parents=True, exist_ok=True)
        (root / marker).write_text("", encoding="utf-8")
    folder = root / "jobs" / "small"
    folder.mkdir(parents=True)
    return _write(folder, BASE)


@pytest.mark.parametrize("marker", ["runs", ".git", "pyproject.toml"])
def test_run_dir_in_project_root(tmp_path: Path, monkeypatch, marker: str) -> None:
    monkeypatch.delenv("BATCHKIT_RUNS", raising=False)
    path = _project_job(tmp_path / "project", marker)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    job = load_job(path)

    assert job.run_dir == tmp_path / "project" / "runs" / "small"


def test_run_dir_ignores_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BATCHKIT_RUNS", raising=False)
    path = _project_job(tmp_path / "project", "pyproject.toml")

    run_dirs = set()
    for folder in (tmp_path, tmp_path / "project", path.parent):
        monkeypatch.chdir(folder)
        run_dirs.add(load_job(path).run_dir)

    assert run_dirs == {tmp_path / "project" / "runs" / "small"}


def test_run_dir_nearest_root_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BATCHKIT_RUNS", raising=False)
    (tmp_path / ".git").mkdir()
    path = _project_job(tmp_path / "inner", "pyproject.toml")

    job = load_job(path)

    assert job.run_dir == tmp_path / "inner" / "runs" / "small"


def test_run_dir_without_project(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BATCHKIT_RUNS", raising=False)
    folder = tmp_path / "jobs" / "small"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)

    job = load_job(_write(folder, BASE))

    assert job.run_dir == folder / "runs" / "small"


def test_run_dir_overrides_project_root(tmp_path: Path, monkeypatch) -> None:
    path = _project_job(tmp_path / "project", "pyproject.toml")
    monkeypatch.setenv("BATCHKIT_RUNS", str(tmp_path / "shared"))

    from_variable = load_job(path).run_dir
    path.write_text(BASE.replace('name = "small"', 'run_dir = "out"'), "utf-8")
    from_key = load_job(path).run_dir

    assert from_variable == tmp_path / "shared" / "small"
    assert from_key == path.parent / "out"


@pytest.mark.parametrize(
    "job_file", sorted(Path(__file__).parents[2].glob("jobs/*/job.toml")), ids=str
)
def test_example_job_loads(job_file: Path) -> None:
    job = load_job(job_file)

    assert job.stages


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

    assert "stages[0].depend_on: unknown key; did you mean 'depends_on'?" in message


PRICES = """
[[prices]]
model = "m"
since = 2025-01-01
output = 1.0
windows = [{ start = "16:30", end = "00:30", factor = 0.25 }]
"""
LOAD = """
[load]
table = "docs"
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('name = "small"', 'name = "small"\nrundir = "out"', "job.rundir"),
        (
            'products = "products.csv"',
            'products = { path = "products.csv", fromat = "csv" }',
            "inputs.products.fromat",
        ),
        ('key = ["id"]', 'key = ["id"]\norder = "id"', "items.order"),
        ('model = "m"', 'model = "m"\nconcurency = 8', "provider.concurency"),
        (
            'model = "m"',
            'model = "m"\n[provider.batch]\nmax_line = 10',
            "provider.batch.max_line",
        ),
        (
            'text = "Hi {{ item.name }}"',
            'text = "Hi {{ item.name }}", name = "x"',
            "stages[0].messages[0].name",
        ),
        ("output = 1.0", "output = 1.0\ninputhit = 0.14", "prices[0].inputhit"),
        ("factor = 0.25", "factor = 0.25, stop = 1", "prices[0].windows[0].stop"),
        ('table = "docs"', 'tabel = "docs"', "load.tabel"),
        ('table = "docs"', "chunk_row = 10", "load.chunk_row"),
    ],
    ids=[
        "job",
        "input",
        "items",
        "provider",
        "provider_batch",
        "message",
        "prices",
        "price_window",
        "load_table",
        "load_chunk_rows",
    ],
)
def test_unknown_key_in_every_table(tmp_path: Path, old: str, new: str, expected):
    text = BASE + PRICES + LOAD
    assert old in text

    message = _problems(tmp_path, text.replace(old, new, 1))

    assert f"{tmp_path / 'job.toml'}: {expected}: unknown key; " in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "concurency = 8",
            "provider.concurency: unknown key; did you mean "
            "'concurrency'? Known keys: api_key_env, base_url, batch, concurrency",
        ),
        ("colour = 'red'", "provider.colour: unknown key; known keys: api_key_env"),
    ],
    ids=["close_match", "no_match"],
)
def test_unknown_key_suggests_match(tmp_path: Path, line: str, expected: str):
    message = _problems(tmp_path, BASE.replace('model = "m"', f'model = "m"\n{line}'))

    assert expected in message


def test_unknown_key_hides_value(tmp_path: Path) -> None:
    url = "postgresql://user:pa55word@db.example.com/postgres"
    text = BASE + LOAD + f'database_url = "{url}"\n'

    message = _problems(tmp_path, text)

    assert "load.database_url: unknown key; did you mean 'database_url_env'?" in (
        message
    )
    assert "pa55word" not in message


def test_api_key_reported_once(tmp_path: Path) -> None:
    text = BASE.replace('model = "m"', 'model = "m"\napi_key = "sk-secret"')

    message = _problems(tmp_path, text)

    assert "keys do not belong in the job file" in message
    assert "provider.api_key: unknown key" not in message


def test_unknown_section_listed_first(tmp_path: Path) -> None:
    text = BASE.replace("[provider]", "[provder]") + BASE[BASE.index("[[stages]]") :]
    text = text.replace('name = "doc_en"', 'name = "doc_de"', 1)

    message = _problems(tmp_path, text)
    first = message.splitlines()[1]

    assert "stages[0].model" in message
    assert "provder = '...': unknown section; did you mean [provider]?" in first


def test_provider_section_optional(tmp_path: Path) -> None:
    text = BASE.replace('[provider]\nmodel = "m"\n', "").replace(
        'name = "doc_en"', 'name = "doc_en"\nmodel = "m"'
    )
    assert "[provider]" not in text

    job = load_job(_write(tmp_path, text))

    assert job.stage("doc_en").model == "m"
    assert job.provider.model == ""


def test_unknown_key_listed_first(tmp_path: Path) -> None:
    text = BASE.replace('model = "m"', 'modle = "m"')

    message = _problems(tmp_path, text)
    first = message.splitlines()[1]

    assert "stages[0].model = (missing)" in message
    assert "provider.modle: unknown key; did you mean 'model'?" in first


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        ('"16:30-00:30"', "prices[0].windows = '16:30-00:30': must be a list"),
        ('["16:30"]', "prices[0].windows[0] = '16:30': must be a table"),
    ],
    ids=["not_list", "entry_not_table"],
)
def test_price_windows_must_be_tables(tmp_path: Path, windows: str, expected: str):
    text = BASE + PRICES.replace(
        '[{ start = "16:30", end = "00:30", factor = 0.25 }]', windows
    )

    message = _problems(tmp_path, text)

    assert expected in message


def test_price_entry_must_be_table(tmp_path: Path) -> None:
    message = _problems(tmp_path, 'prices = ["cheap"]\n' + BASE)

    assert "prices[0] = 'cheap': must be a table" in message


def test_min_chars_above_max_chars(tmp_path: Path) -> None:
    text = BASE + "\n[stages.validate]\nmin_chars = 500\nmax_chars = 100\n"

    message = _problems(tmp_path, text)

    assert "stages[0].validate.min_chars = 500: is larger than max_chars" in message
