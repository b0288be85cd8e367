"""Batch files: splitting at the provider's limits and lossless JSONL."""

from pathlib import Path

import duckdb
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.job.model import BatchLimits
from batchkit.prepare.batchfiles import split_lines, write_stage_files
from batchkit.prepare.render import StageRenderer
from batchkit.prepare.run import prepare_job
from tests.prepare.jobfiles import PRODUCTS, load, write_job
from tests.prepare.test_render import _stage


def _pairs(sizes: list[int]) -> list[tuple[str, str]]:
    return [(f"id{index}", "x" * size) for index, size in enumerate(sizes)]


def test_split_at_max_lines() -> None:
    groups = list(split_lines(_pairs([1] * 5), BatchLimits(max_lines=2)))

    assert [len(group) for group in groups] == [2, 2, 1]


def test_split_at_max_bytes_counts_newline() -> None:
    # Each line is 9 bytes plus its newline; 20 bytes hold exactly two.
    groups = list(split_lines(_pairs([9] * 5), BatchLimits(max_bytes=20)))

    assert [len(group) for group in groups] == [2, 2, 1]


def test_oversized_line_is_own_group() -> None:
    groups = list(split_lines(_pairs([3, 50, 3]), BatchLimits(max_bytes=20)))

    assert [[pair[0] for pair in group] for group in groups] == [
        ["id0"],
        ["id1"],
        ["id2"],
    ]


def _memory_store(lines: list[str]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE requests (custom_id VARCHAR, stage VARCHAR, line VARCHAR)"
    )
    connection.executemany(
        "INSERT INTO requests VALUES (?, 'doc_en', ?)",
        [(orjson.loads(line)["custom_id"], line) for line in lines],
    )
    return connection


def test_prepare_splits_files_at_small_limits(tmp_path: Path) -> None:
    rows = [{**PRODUCTS[0], "id": f"p{number:02d}"} for number in range(7)]
    job = load(write_job(tmp_path, rows=rows, max_lines=3))

    summary = prepare_job(job)

    names = sorted(path.name for path in (job.requests_dir / "doc_en").iterdir())
    assert names == ["doc_en-00001.jsonl", "doc_en-00002.jsonl", "doc_en-00003.jsonl"]
    assert summary.files[0].lines == 7
    data = b"".join((job.requests_dir / "doc_en" / name).read_bytes() for name in names)
    assert b"\r" not in data
    assert data.count(b"\n") == 7


def test_prepare_reports_oversized_request(tmp_path: Path) -> None:
    rows = [dict(row) for row in PRODUCTS]
    rows[2]["description"] = "long " * 200
    job = load(write_job(tmp_path, rows=rows, max_bytes=600))

    summary = prepare_job(job)

    assert summary.files[0].oversized == ["doc_en:p3"]
    assert summary.files[0].lines == 2


def test_rewrite_removes_stale_files(tmp_path: Path) -> None:
    rows = [{**PRODUCTS[0], "id": f"p{number:02d}"} for number in range(4)]
    path = write_job(tmp_path, rows=rows, max_lines=1)
    prepare_job(load(path))

    job = load(write_job(tmp_path, max_lines=10))
    prepare_job(job)

    names = sorted(path.name for path in (job.requests_dir / "doc_en").iterdir())
    assert names == ["doc_en-00001.jsonl"]


_TEXT = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(
        ["\u2028", "\u2029", "\x85", "\x00", "\r", "\n", "😀", "中", '"', "\\"]
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_TEXT, min_size=1, max_size=6))
def test_jsonl_round_trip(tmp_path_factory, values: list[str]) -> None:
    directory = tmp_path_factory.mktemp("batch")
    renderer = StageRenderer(_stage("{{ item.text }}"))
    rendered = [
        renderer.render(f"k{index}", {"text": value}, None)
        for index, value in enumerate(values)
    ]
    connection = _memory_store([request.line for request in rendered])

    file_set = write_stage_files(
        connection, "doc_en", directory / "doc_en", BatchLimits(max_lines=4)
    )

    data = "".join(path.read_text(encoding="utf-8") for path in file_set.files)
    python_lines = data.splitlines()
    assert len(python_lines) == len(values)
    by_id = {
        orjson.loads(line)["custom_id"]: orjson.loads(line) for line in python_lines
    }
    glob = str(directory / "doc_en" / "*.jsonl")
    duck = (
        duckdb.connect()
        .execute(
            "SELECT custom_id, body.messages[1].content FROM "
            f"read_json('{glob}', format = 'newline_delimited')"
        )
        .fetchall()
    )
    for index, value in enumerate(values):
        custom_id = f"doc_en:k{index}"
        assert by_id[custom_id]["body"]["messages"][0]["content"] == value
        assert dict(duck)[custom_id] == value
