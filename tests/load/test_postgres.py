"""Load into a real PostgreSQL 15 cluster started for the test session."""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from batchkit.load import run as load_run
from batchkit.load.errors import LoadError
from batchkit.load.run import load_results, target_schema
from batchkit.store.database import connect
from tests.load.conftest import DB_URL_ENV, add_results, chinese, english, with_load

pytestmark = pytest.mark.postgres


def fetch(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(query).fetchall()


def ledger_count(job) -> int:
    with connect(job, read_only=True) as connection:
        row = connection.execute("SELECT count(*) FROM load_ledger").fetchone()
    return int(row[0])


def test_long_layout_rows(make_job, postgres_url) -> None:
    job = make_job(3, url=postgres_url, layout="long")
    summary = load_results(job, create_table=True)
    rows = fetch(
        postgres_url,
        "SELECT product_id, stage, product_name, content, content_hash, model, "
        "prompt_tokens, completion_tokens, reasoning_tokens, cost_usd "
        "FROM docs ORDER BY product_id, stage",
    )
    assert summary.rows_inserted == 6
    assert summary.rows_updated == 0
    assert len(rows) == 6
    assert rows[0][:4] == ("1", "doc_en", "Product 1", english([1])["1"])
    assert rows[1][:4] == ("1", "doc_zh", "Product 1", chinese([1])["1"])
    assert len(rows[0][4]) == 64
    assert rows[0][5:] == ("test-model", 100, 50, 10, 0.001)
    assert ledger_count(job) == 6


def test_wide_layout_rows(make_job, postgres_url) -> None:
    job = make_job(3, zh=False, url=postgres_url, layout="wide")
    first = load_results(job, create_table=True)
    prepare_zh(job, [1])
    second = load_results(job)
    rows = fetch(
        postgres_url,
        "SELECT product_id, content_en, content_zh, content_zh_hash IS NOT NULL "
        "FROM docs ORDER BY product_id",
    )
    assert first.rows_inserted == 3
    assert second.rows_sent == 1
    assert second.rows_updated == 1
    assert second.stages["doc_zh"].inserts == 1
    assert second.stages["doc_en"].unchanged == 3
    assert rows[0] == ("1", english([1])["1"], chinese([1])["1"], True)
    assert rows[1] == ("2", english([2])["2"], None, False)


def prepare_zh(job, keys: list[int]) -> None:
    from batchkit.prepare.run import prepare_job

    prepare_job(job, write_files=False)
    add_results(job, "doc_zh", chinese(keys))


def test_wide_keeps_stage_without_valid_result(make_job, postgres_url) -> None:
    job = make_job(2, url=postgres_url, layout="wide")
    load_results(job, create_table=True)
    # A newer doc_en result for item 1 that fails validation: doc_zh still
    # has its valid result, and nothing about doc_en may change in the target.
    add_results(job, "doc_en", {"1": "short"}, finished_at=later())
    summary = load_results(job, full=True)
    rows = fetch(postgres_url, "SELECT content_en FROM docs ORDER BY product_id")
    assert summary.stages["doc_en"].rejected == 1
    assert summary.rows_updated == 2  # --full rewrites both rows
    assert rows[0][0] == english([1])["1"]


def later() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_rerun_writes_nothing(make_job, postgres_url, layout) -> None:
    job = make_job(4, url=postgres_url, layout=layout)
    load_results(job, create_table=True)
    before = fetch(postgres_url, "SELECT max(loaded_at) FROM docs")
    rerun = load_results(job)
    after = fetch(postgres_url, "SELECT max(loaded_at) FROM docs")
    assert rerun.rows_sent == 0
    assert rerun.stages["doc_en"].unchanged == 4
    assert rerun.stages["doc_en"].resent == 0
    assert before == after


# Per layout: the column that contains doc_en's text, which the tests edit by hand.
EDITED_COLUMN = {"long": "content", "wide": "content_en"}


def edit_outside_batchkit(url: str, layout: str) -> None:
    """Delete products 1 and 2 and overwrite the doc_en text of 3 and 4."""
    content = sql.Identifier(EDITED_COLUMN[layout])
    stage = sql.SQL(" AND stage = 'doc_en'" if layout == "long" else "")
    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM docs WHERE product_id IN ('1', '2')")
        connection.execute(
            sql.SQL(
                "UPDATE docs SET {} = 'tampered' WHERE product_id IN ('3', '4'){}"
            ).format(content, stage)
        )


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_full_repairs_edited_table(make_job, postgres_url, layout) -> None:
    job = make_job(6, url=postgres_url, layout=layout)
    load_results(job, create_table=True)
    edit_outside_batchkit(postgres_url, layout)
    stages = 2 if layout == "long" else 1  # target rows per product
    plain = load_results(job, dry_run=True)
    full = load_results(job, full=True)
    after = load_results(job)
    column = EDITED_COLUMN[layout]
    stage_filter = "WHERE stage = 'doc_en' " if layout == "long" else ""
    texts = fetch(
        postgres_url,
        f"SELECT product_id, {column} FROM docs {stage_filter}ORDER BY product_id",
    )
    # The ledger still records every row as loaded, so a plain load sends none.
    assert plain.rows_planned == 0
    assert full.stages["doc_en"].resent == 6
    assert full.stages["doc_en"].unchanged == 0
    assert full.stages["doc_en"].inserts == 0
    assert full.rows_sent == 6 * stages
    assert full.rows_inserted == 2 * stages
    assert full.rows_updated == 4 * stages
    assert texts == [(key, text) for key, text in english(range(1, 7)).items()]
    assert fetch(postgres_url, "SELECT count(*) FROM docs") == [(6 * stages,)]
    assert after.rows_sent == 0
    assert after.stages["doc_en"].unchanged == 6


def test_full_dry_run_counts_resent(make_job, postgres_url) -> None:
    job = make_job(3, url=postgres_url, layout="wide")
    load_results(job, create_table=True)
    dry = load_results(job, dry_run=True, full=True)
    assert dry.full is True
    assert dry.stages["doc_zh"].resent == 3
    assert dry.stages["doc_zh"].unchanged == 0
    assert dry.rows_planned == 3


def test_changed_result_updates_one_row(make_job, postgres_url) -> None:
    job = make_job(3, url=postgres_url, layout="long")
    load_results(job, create_table=True)
    add_results(
        job, "doc_en", {"2": "A revised English document."}, finished_at=later()
    )
    dry = load_results(job, dry_run=True)
    summary = load_results(job)
    rows = fetch(postgres_url, "SELECT content FROM docs WHERE product_id = '2'")
    assert dry.stages["doc_en"].updates == 1
    assert dry.rows_sent == 0
    assert summary.rows_sent == 1
    assert summary.rows_updated == 1
    assert ("A revised English document.",) in rows


def test_two_attempts_for_one_key_in_one_chunk(make_job, postgres_url) -> None:
    job = make_job(2, zh=False, url=postgres_url, layout="long")
    add_results(job, "doc_en", {"1": "Second good English text."}, finished_at=later())
    add_results(
        job,
        "doc_en",
        {"1": "Third good English text, newest."},
        finished_at=later() + timedelta(seconds=1),
    )
    summary = load_results(job, create_table=True)
    rows = fetch(postgres_url, "SELECT content FROM docs WHERE product_id = '1'")
    assert summary.chunks == 1
    assert rows == [("Third good English text, newest.",)]


def test_duplicate_target_keys_keep_newest(make_job, postgres_url) -> None:
    # Two items map to one target key when load.key is coarser than the item key.
    job = make_job(3, zh=False, url=postgres_url, layout="long")
    job = with_load(job, key=("product_name",), item_columns=())
    with connect(job) as connection:
        connection.execute(
            "UPDATE items SET item = json_object('item_key', item_key, "
            "'product_id', item_key, 'product_name', 'same')"
        )
    add_results(job, "doc_en", {"3": "The newest English text."}, finished_at=later())
    summary = load_results(job, create_table=True)
    rows = fetch(postgres_url, "SELECT product_name, content FROM docs")
    assert summary.duplicates == 2
    assert rows == [("same", "The newest English text.")]


def test_nul_characters_removed(make_job, postgres_url) -> None:
    job = make_job(1, zh=False, url=postgres_url, layout="long")
    add_results(
        job, "doc_en", {"1": "Bad\x00 byte\x00 text here."}, finished_at=later()
    )
    summary = load_results(job, create_table=True)
    rows = fetch(postgres_url, "SELECT content FROM docs")
    assert summary.nul_removed == 2
    assert rows == [("Bad byte text here.",)]


def test_terminated_backend_is_retried(make_job, postgres_url, monkeypatch) -> None:
    monkeypatch.setattr(load_run, "RETRY_BASE_SECONDS", 0.01)
    job = make_job(6, url=postgres_url, layout="long", chunk_rows=2)
    load_results(job, dry_run=True)
    calls: list[int] = []

    def terminate_once(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            terminate_loaders(postgres_url)

    summary = load_results(job, create_table=True, progress=terminate_once)
    count = fetch(postgres_url, "SELECT count(*) FROM docs")
    assert summary.retries >= 1
    assert summary.rows_sent == 12
    assert count == [(12,)]
    assert ledger_count(job) == 12


def terminate_loaders(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_terminated_load_completes_on_rerun(
    make_job, postgres_url, monkeypatch
) -> None:
    monkeypatch.setattr(load_run, "CHUNK_ATTEMPTS", 1)
    job = make_job(6, url=postgres_url, layout="long", chunk_rows=2)
    calls: list[int] = []

    def terminate_after_second(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            terminate_loaders(postgres_url)

    with pytest.raises(LoadError, match="rerun load") as raised:
        load_results(job, create_table=True, progress=terminate_after_second)
    partial = fetch(postgres_url, "SELECT count(*) FROM docs")
    partial_ledger = ledger_count(job)
    rerun = load_results(job)
    total = fetch(postgres_url, "SELECT count(*) FROM docs")
    assert "password" not in str(raised.value)
    assert partial == [(4,)]
    assert partial_ledger == 4
    assert rerun.rows_sent == 8
    assert total == [(12,)]
    assert ledger_count(job) == 12


def test_role_without_insert(make_job, postgres_url, monkeypatch) -> None:
    job = make_job(2, url=postgres_url, layout="long")
    load_results(job, create_table=True)
    role = f"reader_{postgres_url.rsplit('/', 1)[-1]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'hunter2-secret'").format(
                sql.Identifier(role)
            )
        )
        connection.execute(
            sql.SQL("GRANT SELECT, UPDATE ON docs TO {}").format(sql.Identifier(role))
        )
        connection.execute("TRUNCATE docs")
    reader_url = postgres_url.replace("postgres@", f"{role}:hunter2-secret@")
    job_as_reader = with_load(job, database_url_env="BATCHKIT_TEST_READER_URL")
    monkeypatch.setenv("BATCHKIT_TEST_READER_URL", reader_url)
    with pytest.raises(LoadError) as raised:
        load_results(job_as_reader, full=True)
    message = str(raised.value)
    assert f"role {role} lacks INSERT on docs" in message
    assert "GRANT INSERT ON docs" in message
    assert "hunter2-secret" not in message
    assert fetch(postgres_url, "SELECT count(*) FROM docs") == [(0,)]


def test_row_security_without_policy(make_job, postgres_url) -> None:
    job = make_job(1, zh=False, url=postgres_url, layout="long")
    load_results(job, create_table=True)
    role = f"writer_{postgres_url.rsplit('/', 1)[-1]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        connection.execute(
            sql.SQL("GRANT INSERT, UPDATE, SELECT ON docs TO {}").format(
                sql.Identifier(role)
            )
        )
        connection.execute("ALTER TABLE docs ENABLE ROW LEVEL SECURITY")
    url = postgres_url.replace("postgres@", f"{role}@")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DB_URL_ENV, url)
        with pytest.raises(LoadError, match="row-level security is enabled on docs"):
            load_results(job, full=True)


def test_missing_table_names_the_fix(make_job, postgres_url) -> None:
    job = make_job(1, zh=False, url=postgres_url)
    with pytest.raises(LoadError, match=r"table docs not found.*--create-table"):
        load_results(job)
    assert ledger_count(job) == 0


def test_bad_password_is_redacted(make_job, postgres_server, monkeypatch) -> None:
    job = make_job(1, zh=False)
    url = f"postgresql://nobody:s3cr3t-pw@127.0.0.1:{postgres_server.port}/nowhere"
    monkeypatch.setenv(DB_URL_ENV, url)
    with pytest.raises(LoadError) as raised:
        load_results(job)
    message = str(raised.value)
    assert "s3cr3t-pw" not in message
    assert f"postgres://127.0.0.1:{postgres_server.port}/nowhere/docs" in message
    assert DB_URL_ENV in message


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_schema_applies_cleanly(make_job, postgres_url, layout) -> None:
    job = make_job(2, url=postgres_url, layout=layout)
    script = target_schema(job)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(script)
        connection.execute(script)  # IF NOT EXISTS: a second run changes nothing
    summary = load_results(job)
    assert summary.rows_inserted == (4 if layout == "long" else 2)


def test_ledger_names_no_secret(make_job, postgres_server, monkeypatch) -> None:
    job = make_job(1, zh=False)
    url = f"postgresql://postgres:pw-in-url@127.0.0.1:{postgres_server.port}/batchkit_admin"
    monkeypatch.setenv(DB_URL_ENV, url)
    load_results(job, create_table=True)
    with connect(job, read_only=True) as connection:
        targets = connection.execute(
            "SELECT DISTINCT target FROM load_ledger"
        ).fetchall()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE docs")
    assert targets == [
        (f"postgres://127.0.0.1:{postgres_server.port}/batchkit_admin/docs",)
    ]
    assert "pw-in-url" not in (job.db_path.read_bytes().decode("latin-1"))


TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["中", "文", "😀", "\u2028", "\x00", "é"]),
    ),
    min_size=10,
    max_size=200,
).filter(lambda text: text.replace("\x00", "").strip() != "")


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=TEXT, repeat=st.integers(min_value=1, max_value=2000))
def test_round_trip_text(make_job_once, content: str, repeat: int) -> None:
    job, url = make_job_once
    text = content * repeat if len(content) * repeat < 400_000 else content
    add_results(job, "doc_en", {"1": text}, finished_at=later())
    load_results(job)
    rows = fetch(url, "SELECT content, content_hash FROM docs WHERE stage = 'doc_en'")
    assert rows[0][0] == text.replace("\x00", "")


@pytest.fixture
def make_job_once(make_job, postgres_url):
    """Return a loaded one-item job whose doc_en stage accepts any non-empty text."""
    job = make_job(1, zh=False, url=postgres_url, layout="long")
    stage = job.stages[0]
    rules = replace(stage.validation, min_chars=None, finish_reason=None)
    job = replace(job, stages=(replace(stage, validation=rules), *job.stages[1:]))
    load_results(job, create_table=True)
    return job, postgres_url


def test_chunks_commit_atomically(make_job, postgres_url) -> None:
    # A reader polling the table during the load reads whole chunks only.
    job = make_job(10, zh=False, url=postgres_url, layout="long", chunk_rows=3)
    load_results(job, create_table=True, dry_run=True)
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            while not stop.is_set():
                try:
                    row = connection.execute("SELECT count(*) FROM docs").fetchone()
                except psycopg.errors.UndefinedTable:
                    continue
                seen.append(int(row[0]))

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(target_schema(job))
    reader = threading.Thread(target=poll)
    reader.start()
    try:
        load_results(job)
    finally:
        stop.set()
        reader.join()
    assert set(seen) <= {0, 3, 6, 9, 10}
