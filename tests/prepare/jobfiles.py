"""Write small job folders for prepare tests: inputs, templates and job.toml."""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from batchkit.job.loader import load_job
from batchkit.job.model import Job

PRODUCTS = [
    {"id": "p1", "name": "Alpha", "description": "Writes release notes."},
    {"id": "p2", "name": "Beta", "description": "Sorts support tickets."},
    {"id": "p3", "name": "Gamma", "description": "Summarises meetings."},
]

DOC_TEMPLATE = "Write a short page about {{ item.name }}: {{ item.description }}"
ZH_TEMPLATE = "Translate into Chinese:\n\n{{ source.content }}"

_JOB = """
[job]
name = "small"
run_dir = "run"

[inputs]
products = "{input_name}"

[items]
query = "{query}"
key = {key}

[provider]
model = "test-model"

[provider.batch]
max_lines = {max_lines}
max_bytes = {max_bytes}

[[stages]]
name = "doc_en"
messages = [
    {{ role = "system", text = "You write product pages." }},
    {{ role = "user", file = "doc_en.j2" }},
]
max_tokens = 400
temperature = 0.2

[stages.validate]
language = "en"
min_chars = 20
finish_reason = "stop"
{extra_stages}
[[prices]]
model = "test-model"
since = 2025-01-01
input_miss = 1.0
input_hit = 0.1
output = 2.0
"""

ZH_STAGE = """
[[stages]]
name = "doc_zh"
depends_on = "doc_en"
messages = [{ role = "user", file = "doc_zh.j2" }]
max_tokens = 800

[stages.validate]
language = "zh"
finish_reason = "stop"
"""


def write_csv(path: Path, rows: list[dict[str, Any]], **options: Any) -> None:
    """Write `rows` as an RFC 4180 CSV file with a header."""
    with path.open("w", newline="", encoding=options.pop("encoding", "utf-8")) as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), **options)
        writer.writeheader()
        writer.writerows(rows)


def write_job(
    directory: Path,
    *,
    rows: list[dict[str, Any]] | None = None,
    input_name: str = "products.csv",
    query: str = "SELECT * FROM products",
    key: tuple[str, ...] = ("id",),
    with_zh: bool = False,
    max_lines: int = 50_000,
    max_bytes: int = 200_000_000,
    doc_template: str = DOC_TEMPLATE,
) -> Path:
    """Write a one- or two-stage job into `directory`; return the job file's path."""
    if rows is not None or not (directory / input_name).exists():
        write_csv(directory / input_name, rows or PRODUCTS)
    (directory / "doc_en.j2").write_text(doc_template, encoding="utf-8")
    (directory / "doc_zh.j2").write_text(ZH_TEMPLATE, encoding="utf-8")
    key_list = "[" + ", ".join(f'"{column}"' for column in key) + "]"
    text = _JOB.format(
        input_name=input_name,
        query=query,
        key=key_list,
        max_lines=max_lines,
        max_bytes=max_bytes,
        extra_stages=ZH_STAGE if with_zh else "",
    )
    path = directory / "job.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Snapshot:
    """What prepare wrote: the request versions and the batch files' bytes."""

    versions: list[tuple[Any, ...]]
    files: dict[str, bytes]
    has_database: bool


def take_snapshot(job: Job) -> Snapshot:
    """Read every request version and batch file of `job`, to compare later."""
    files = {
        str(path.relative_to(job.run_dir)): path.read_bytes()
        for path in sorted(job.requests_dir.rglob("*"))
        if path.is_file()
    }
    if not job.db_path.exists():
        return Snapshot([], files, has_database=False)
    with duckdb.connect(str(job.db_path), read_only=True) as connection:
        versions = connection.execute(
            "SELECT custom_id, request_hash, superseded_at FROM request_versions "
            "ORDER BY ALL"
        ).fetchall()
    return Snapshot(versions, files, has_database=True)


def load(path: Path) -> Job:
    """Load the job file at `path`."""
    return load_job(path)
