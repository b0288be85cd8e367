"""Runs killed between upload, batch creation and the database record."""

from collections import Counter

import pytest

from batchkit.execute.batch.errors import BatchRunLockedError
from batchkit.execute.batch.recover import batch_lock


class Killed(Exception):
    """Stands in for the process dying at a step of the run."""


def _kill_at(step_name):
    def hook(step, value):
        if step == step_name:
            raise Killed(step)

    return hook


def test_killed_after_upload_deletes_orphan_file(make_env):
    env = make_env(4)
    with pytest.raises(Killed):
        env.run(on_step=_kill_at("uploaded"))
    (orphan,) = env.sim_files()
    assert env.sim_batches() == []

    summary = env.run(wait=True)

    assert summary.deleted_files == [orphan["id"]]
    assert orphan["id"] not in {f["id"] for f in env.sim_files()}
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()
    assert {a["status"] for a in env.attempts()} == {"ok"}


def test_killed_after_create_adopts_batch(make_env):
    env = make_env(6, max_lines=3)
    with pytest.raises(Killed):
        env.run(on_step=_kill_at("created"))
    (created,) = env.sim_batches()
    assert env.provider_batches() == []

    summary = env.run(wait=True)

    assert summary.adopted == [created["id"]]
    counts = Counter(env.submitted_custom_ids())
    assert sorted(counts) == env.custom_ids()
    assert set(counts.values()) == {1}
    attempts = env.attempts()
    assert len(attempts) == 6
    assert {a["status"] for a in attempts} == {"ok"}
    adopted = [b for b in env.provider_batches() if b["batch_id"] == created["id"]]
    assert adopted[0]["request_count"] == 3
    assert adopted[0]["enqueued_tokens"] > 0


def test_killed_after_record_only_polls(make_env):
    env = make_env(5)
    env.run()
    (batch,) = env.sim_batches()

    summary = env.run(wait=True)

    assert summary.created == []
    assert summary.submitted == 0
    assert [b["id"] for b in env.sim_batches()] == [batch["id"]]
    assert {a["status"] for a in env.attempts()} == {"ok"}
    assert len(env.attempts()) == 5


def test_second_run_submits_nothing_live(make_env):
    env = make_env(5)
    env.run(extra_metadata=lambda _: {"sim_lines_per_second": "1"})

    summary = env.run()

    assert summary.created == []
    assert len(env.sim_batches()) == 1


def test_concurrent_run_is_rejected(make_env):
    env = make_env(1)

    with batch_lock(env.job), pytest.raises(BatchRunLockedError) as caught:
        env.run()

    assert "another `batchkit execute --mode batch`" in str(caught.value)
    assert "batchtest" in str(caught.value)


def test_adoption_reads_every_page(make_env):
    env = make_env(6, max_lines=2)
    created = []

    def kill_at_third(step, value):
        if step == "created":
            created.append(value["id"])
            if len(created) == 3:
                raise Killed(step)

    with pytest.raises(Killed):
        env.run(on_step=kill_at_third)

    summary = env.run(page_size=1, wait=True)

    assert summary.adopted == [created[2]]
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()
    assert {a["status"] for a in env.attempts()} == {"ok"}


def test_deleted_output_file_leaves_requests_pending(make_env):
    env = make_env(3)
    env.run()
    env.wait_for_sim_batches("completed")
    (batch,) = env.sim_batches()
    env.sim_delete(f"/files/{batch['output_file_id']}")

    summary = env.run(poll_only=True)

    assert "is gone from the provider" in summary.errors[0]
    attempts = env.attempts()
    assert len(attempts) == 3
    assert {a["error_type"] for a in attempts} == {"missing_from_output"}
