"""Output line → response log → DuckDB keeps any text unchanged."""

import uuid
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchkit.execute.batch.ingest import ingest_batch
from batchkit.execute.responselog import ResponseLog
from batchkit.store.database import connect
from tests.execute_batch.test_ingest import _batch, _completion, _line, _request

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u2028", "\u2029", "\x00", "中", "😀", "\n"]),
    ),
    max_size=300,
)


@pytest.fixture
def env(make_env):
    """One prepared job, shared by every example of a test."""
    return make_env(1)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=TEXT, reasoning=TEXT)
def test_output_text_survives_response_log(env, content, reasoning):
    body = _completion(content)
    body["choices"][0]["message"]["reasoning_content"] = reasoning
    output = env.job.run_dir / "output.jsonl"
    output.write_bytes(orjson.dumps(_line("doc:p001", body=body)) + b"\n")
    run_id = f"prop-{uuid.uuid4().hex}"

    batch = replace(_batch(), run_id=run_id)
    requests = {"doc:p001": _request("doc:p001")}

    with ResponseLog(env.job, run_id) as log:
        ingest_batch(batch, requests, [output], log.append, set())

    with connect(env.job, read_only=True) as connection:
        row = connection.execute(
            "SELECT content, reasoning_content FROM attempts WHERE run_id = ?", [run_id]
        ).fetchone()
    assert row == (content, reasoning)
