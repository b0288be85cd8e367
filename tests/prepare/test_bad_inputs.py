"""Every bad input stops prepare with a clear message and writes nothing."""

from collections.abc import Callable
from pathlib import Path

import pytest

from batchkit.job.errors import JobError
from batchkit.job.loader import load_job
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.run import prepare_job
from tests.prepare.jobfiles import PRODUCTS, load, take_snapshot, write_csv, write_job

Breaker = Callable[[Path], None]


def _replace_in_job(directory: Path, old: str, new: str) -> None:
    path = directory / "job.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _write_input(directory: Path, data: bytes) -> None:
    (directory / "products.csv").write_bytes(data)


def _duplicate_keys(directory: Path) -> None:
    rows = [*PRODUCTS, {**PRODUCTS[1], "name": "Beta copy"}]
    write_csv(directory / "products.csv", rows)


# (case id, how to break the job folder, regex the message must match)
CASES: list[tuple[str, Breaker, str]] = [
    (
        "missing_file",
        lambda d: (d / "products.csv").unlink(),
        r"products\.csv: input 'products' not found; fix inputs\.products\.path",
    ),
    (
        "zero_bytes",
        lambda d: _write_input(d, b""),
        r"products\.csv: input 'products' is empty \(0 bytes\); add rows",
    ),
    (
        "header_only",
        lambda d: _write_input(d, b"id,name,description\r\n"),
        r"products\.csv: input 'products' has a header but no rows; add rows",
    ),
    (
        "not_utf8",
        lambda d: _write_input(d, b"id,name\r\np1,Alpha\r\np2,Caf\xe9\r\n"),
        r"products\.csv: line 3 is not valid UTF-8 .*save the file as UTF-8",
    ),
    (
        "broken_quote",
        lambda d: _write_input(d, b'id,name\r\np1,"Alpha\r\np2,Beta\r\n'),
        r"products\.csv: line 2: invalid CSV in the row that starts there .*closed",
    ),
    (
        "stray_quote",
        lambda d: _write_input(d, b'id,name\r\np1,"Al"pha"\r\n'),
        r"products\.csv: line 2: invalid CSV .*doubled",
    ),
    (
        "extra_field",
        lambda d: _write_input(d, b"id,name\r\np1,Alpha\r\np2,Beta,extra\r\n"),
        r"products\.csv: line 3 has 3 fields, the header has 2; quote values",
    ),
    (
        "duplicate_header",
        lambda d: _write_input(d, b"id,name,name\r\np1,Alpha,A\r\n"),
        r"products\.csv: the header names column 'name' twice",
    ),
    (
        "missing_query_column",
        lambda d: _replace_in_job(
            d, "SELECT * FROM products", "SELECT id, nme FROM products"
        ),
        r"job\.toml: items\.query failed: .*nme.*; fix the query",
    ),
    (
        "missing_key_column",
        lambda d: _replace_in_job(d, 'key = ["id"]', 'key = ["sku"]'),
        r"job\.toml: items\.key names 'sku', which the items query does not return; "
        r"its columns are id, name, description",
    ),
    (
        "duplicate_keys",
        _duplicate_keys,
        r"items\.key \(id\) is not unique; first duplicates: 'p2' \(2 rows\)\. "
        r"Add columns to items\.key",
    ),
    (
        "no_items",
        lambda d: _replace_in_job(
            d, "SELECT * FROM products", "SELECT * FROM products WHERE false"
        ),
        r"items\.query returned no rows; check the inputs and the query",
    ),
    (
        "missing_variable",
        lambda d: (d / "doc_en.j2").write_text("Hello {{ item.colour }}"),
        r"doc_en\.j2: stage 'doc_en', item 'p1': undefined template variable "
        r"'colour'; the item has description, id, name\. Fix the template",
    ),
    (
        "template_syntax",
        lambda d: (d / "doc_en.j2").write_text("Hello\n{% if item.name %}"),
        r"doc_en\.j2: line 2: invalid Jinja2 template in stage 'doc_en': .*endif",
    ),
]


@pytest.mark.parametrize(
    ("break_job", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_writes_nothing(
    tmp_path: Path, break_job: Breaker, message: str
) -> None:
    path = write_job(tmp_path, with_zh=True)
    prepare_job(load(path))
    before = take_snapshot(load(path))
    assert before.versions

    break_job(tmp_path)
    with pytest.raises(PrepareError, match=message):
        prepare_job(load(path))

    assert take_snapshot(load(path)) == before


FILE_CASES = [case for case in CASES if case[0] in {"missing_file", "not_utf8"}]


@pytest.mark.parametrize(
    ("break_job", "message"),
    [case[1:] for case in FILE_CASES],
    ids=[case[0] for case in FILE_CASES],
)
def test_bad_file_creates_no_database(
    tmp_path: Path, break_job: Breaker, message: str
) -> None:
    path = write_job(tmp_path)
    break_job(tmp_path)

    with pytest.raises(PrepareError, match=message):
        prepare_job(load(path))

    assert not load(path).db_path.exists()


def test_depends_on_unknown_stage_is_job_error(tmp_path: Path) -> None:
    path = write_job(tmp_path, with_zh=True)
    _replace_in_job(tmp_path, 'depends_on = "doc_en"', 'depends_on = "doc_fr"')

    with pytest.raises(JobError) as raised:
        load_job(path)

    assert "stages[1].depends_on = 'doc_fr': no stage of that name" in str(raised.value)
    assert "stages are doc_en, doc_zh" in str(raised.value)


def test_dependency_cycle_is_job_error(tmp_path: Path) -> None:
    path = write_job(tmp_path, with_zh=True)
    _replace_in_job(
        tmp_path, 'name = "doc_en"\n', 'name = "doc_en"\ndepends_on = "doc_zh"\n'
    )

    with pytest.raises(JobError) as raised:
        load_job(path)

    assert "dependency cycle doc_en -> doc_zh -> doc_en" in str(raised.value)
