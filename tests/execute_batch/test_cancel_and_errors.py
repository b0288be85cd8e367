"""--cancel, a server without a batch API, and provider errors."""

import pytest

from batchkit.execute.batch import execute_batch
from batchkit.execute.batch.errors import NoBatchApiError
from batchkit.execute.select import Selection
from batchkit.providers.errors import AuthenticationError


def test_cancel_keeps_finished_lines(make_env):
    env = make_env(8)
    env.run(extra_metadata=lambda _: {"sim_lines_per_second": "4"})

    summary = env.run(cancel=True)

    (batch,) = env.provider_batches()
    assert summary.cancelled == [batch["batch_id"]]
    assert batch["status"] == "cancelled"
    assert batch["ingested_at"] is not None
    attempts = env.attempts()
    assert len(attempts) == 8
    cancelled = [a for a in attempts if a["status"] == "failed"]
    assert cancelled
    assert {a["error_type"] for a in cancelled} == {"batch_cancelled"}
    assert len(attempts) - len(cancelled) == summary.ok


def test_cancel_without_live_batches_does_nothing(make_env):
    env = make_env(2)

    summary = env.run(cancel=True)

    assert summary.cancelled == []
    assert env.sim_batches() == []


def test_endpoint_without_batch_api(make_env, server_without_batches):
    env = make_env(1)

    with pytest.raises(NoBatchApiError) as caught:
        execute_batch(env.job, Selection(), base_url=server_without_batches)

    message = str(caught.value)
    assert "this endpoint has no batch API" in message
    assert "GET " + server_without_batches + "/batches returned 404" in message
    assert message.endswith("use --mode stream")


def test_wrong_key_is_terminal(make_env, monkeypatch):
    env = make_env(1)
    monkeypatch.setenv("BATCHKIT_BATCH_TEST_KEY", "sk-wrong")

    with pytest.raises(AuthenticationError) as caught:
        execute_batch(env.job, Selection())

    assert "returned 401" in str(caught.value)
    assert "sk-wrong" not in str(caught.value)
