"""Input files of every format load into DuckDB and form items."""

from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from batchkit.prepare.run import prepare_job
from tests.prepare.jobfiles import load, write_job

ROWS = [
    {"id": "007", "name": "Alpha", "description": 'Says "hi", then, waves'},
    {"id": "p2", "name": "Beta", "description": "Line one\r\nline two"},
]


def _requests(path: Path) -> dict[str, str]:
    job = load(path)
    with duckdb.connect(str(job.db_path), read_only=True) as connection:
        rows = connection.execute("SELECT custom_id, line FROM requests").fetchall()
    return dict(rows)


def _user_message(line: str) -> str:
    return orjson.loads(line)["body"]["messages"][1]["content"]


def test_csv_with_bom_and_crlf_keeps_key_clean(tmp_path: Path) -> None:
    data = (
        "\ufeffid,name,description\r\n"
        '007,Alpha,"Says ""hi"", then, waves"\r\n'
        'p2,Beta,"Line one\r\nline two"\r\n'
    )
    (tmp_path / "products.csv").write_bytes(data.encode("utf-8"))
    path = write_job(tmp_path)

    prepare_job(load(path))

    requests = _requests(path)
    assert sorted(requests) == ["doc_en:007", "doc_en:p2"]
    assert all("\ufeff" not in line for line in requests.values())
    assert _user_message(requests["doc_en:007"]).endswith('Says "hi", then, waves')
    assert _user_message(requests["doc_en:p2"]).endswith("Line one\r\nline two")


def test_parquet_input(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "products.parquet")
    path = write_job(tmp_path, input_name="products.parquet")

    summary = prepare_job(load(path))

    assert summary.input_rows == {"products": 2}
    assert sorted(_requests(path)) == ["doc_en:007", "doc_en:p2"]


def test_json_array_input(tmp_path: Path) -> None:
    (tmp_path / "products.json").write_bytes(orjson.dumps(ROWS))
    path = write_job(tmp_path, input_name="products.json")

    prepare_job(load(path))

    requests = _requests(path)
    assert _user_message(requests["doc_en:p2"]).endswith("Line one\r\nline two")


def test_jsonl_input(tmp_path: Path) -> None:
    lines = b"\n".join(orjson.dumps(row) for row in ROWS) + b"\n"
    (tmp_path / "products.jsonl").write_bytes(lines)
    path = write_job(tmp_path, input_name="products.jsonl")

    prepare_job(load(path))

    assert sorted(_requests(path)) == ["doc_en:007", "doc_en:p2"]


def test_composite_key_joins_columns(tmp_path: Path) -> None:
    path = write_job(
        tmp_path,
        query="SELECT p.*, t.t AS template FROM products p CROSS JOIN "
        "(VALUES ('a'), ('b')) t(t)",
        key=("id", "template"),
    )

    summary = prepare_job(load(path))

    assert summary.items == 6
    assert "doc_en:p1:b" in _requests(path)
