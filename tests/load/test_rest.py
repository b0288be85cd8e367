"""Load through supabase-py's REST upsert.

No PostgREST server can run here, so these tests use the PostgREST stand-in
in tests/fixtures/postgrest.py: it speaks the upsert request of the PostgREST
protocol and writes into the same real PostgreSQL as the other load tests.
"""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from batchkit.load import run as load_run
from batchkit.load.errors import LoadError
from batchkit.load.run import load_results, target_schema
from tests.load.conftest import (
    REST_KEY_ENV,
    REST_URL_ENV,
    add_results,
    chinese,
    english,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def rest_job(make_job, postgrest_server, monkeypatch):
    """Return a builder of prepared jobs whose target table exists, over REST."""
    monkeypatch.setenv(REST_URL_ENV, postgrest_server.url)
    monkeypatch.setenv(REST_KEY_ENV, postgrest_server.key)
    monkeypatch.setattr(load_run, "RETRY_BASE_SECONDS", 0.01)

    def build(products: int, **options):
        job = make_job(products, target="rest", **options)
        with psycopg.connect(postgrest_server.database_url, autocommit=True) as db:
            db.execute(target_schema(job))
        return job

    return build


def fetch(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(query).fetchall()


def test_rest_long_upsert(rest_job, postgrest_server) -> None:
    job = rest_job(3, layout="long")
    summary = load_results(job)
    rerun = load_results(job)
    rows = fetch(
        postgrest_server.database_url,
        "SELECT product_id, stage, content, prompt_tokens, generated_at IS NOT NULL "
        "FROM docs ORDER BY 1, 2",
    )
    assert summary.rows_sent == 6
    assert summary.rows_inserted is None
    assert summary.target == f"rest://127.0.0.1:{postgrest_server.port}/docs"
    assert rerun.rows_sent == 0
    assert rows[0] == ("1", "doc_en", english([1])["1"], 100, True)
    assert rows[1] == ("1", "doc_zh", chinese([1])["1"], 100, True)
    assert len(rows) == 6


def test_rest_wide_leaves_absent_stage(rest_job, postgrest_server) -> None:
    job = rest_job(2, layout="wide")
    load_results(job)
    newer = datetime.now(UTC) + timedelta(minutes=5)
    add_results(job, "doc_en", {"1": "short"}, finished_at=newer)
    add_results(job, "doc_zh", {"1": "新的中文翻译文本。"}, finished_at=newer)
    summary = load_results(job)
    rows = fetch(
        postgrest_server.database_url,
        "SELECT content_en, content_zh FROM docs WHERE product_id = '1'",
    )
    assert summary.stages["doc_en"].rejected == 1
    assert summary.rows_sent == 1
    assert rows == [(english([1])["1"], "新的中文翻译文本。")]


def test_rest_full_repairs_edited_table(rest_job, postgrest_server) -> None:
    job = rest_job(3, layout="wide")
    load_results(job)
    with psycopg.connect(postgrest_server.database_url) as db:
        db.execute("DELETE FROM docs WHERE product_id = '1'")
        db.execute("UPDATE docs SET content_en = 'tampered' WHERE product_id = '2'")
    full = load_results(job, full=True)
    after = load_results(job)
    rows = fetch(
        postgrest_server.database_url,
        "SELECT product_id, content_en FROM docs ORDER BY product_id",
    )
    assert full.stages["doc_en"].resent == 3
    assert full.rows_sent == 3
    assert rows == list(english(range(1, 4)).items())
    assert after.rows_sent == 0


@pytest.mark.parametrize("mode", ["413", "57014", "503"])
def test_rest_splits_rejected_chunks(rest_job, postgrest_server, mode) -> None:
    postgrest_server.fail_over_rows = 2
    postgrest_server.fail_mode = mode
    job = rest_job(8, zh=False, layout="long", chunk_rows=8)
    summary = load_results(job)
    count = fetch(postgrest_server.database_url, "SELECT count(*) FROM docs")
    sizes = [rows for rows, status in postgrest_server.requests]
    assert count == [(8,)]
    assert summary.splits == 3  # 8 -> 4 + 4 -> four chunks of 2
    assert summary.chunks == 4
    assert sizes == [8, 4, 2, 2, 4, 2, 2]


def test_rest_single_row_rejected(rest_job, postgrest_server) -> None:
    postgrest_server.fail_over_rows = 0
    postgrest_server.fail_mode = "57014"
    job = rest_job(2, zh=False, layout="long")
    with pytest.raises(LoadError, match="single row") as raised:
        load_results(job)
    assert "statement timeout" in str(raised.value)
    assert postgrest_server.key not in str(raised.value)


def test_rest_permission_error(rest_job, postgrest_server) -> None:
    job = rest_job(2, zh=False, layout="long")
    role = f"api_{postgrest_server.database_url.rsplit('/', 1)[-1]}"
    with psycopg.connect(postgrest_server.database_url, autocommit=True) as db:
        db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        db.execute(sql.SQL("GRANT SELECT ON docs TO {}").format(sql.Identifier(role)))
    admin_url = postgrest_server.database_url
    postgrest_server.database_url = admin_url.replace("postgres@", f"{role}@")
    with pytest.raises(LoadError) as raised:
        load_results(job)
    message = str(raised.value)
    assert "permission denied" in message
    assert "GRANT INSERT, UPDATE, SELECT ON docs" in message
    assert fetch(admin_url, "SELECT count(*) FROM docs") == [(0,)]
    assert load_results(job, dry_run=True).stages["doc_en"].inserts == 2


def test_rest_wrong_key(rest_job, postgrest_server, monkeypatch) -> None:
    job = rest_job(1, zh=False)
    monkeypatch.setenv(REST_KEY_ENV, "wrong-key-value")
    with pytest.raises(LoadError, match=REST_KEY_ENV) as raised:
        load_results(job)
    assert "wrong-key-value" not in str(raised.value)


def test_rest_cannot_create_table(rest_job) -> None:
    job = rest_job(1, zh=False)
    with pytest.raises(LoadError, match="cannot create tables"):
        load_results(job, create_table=True)
