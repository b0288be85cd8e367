"""Batches that end with lost lines, expiry, only errors or a whole failure."""

from batchkit.execute.select import Selection, count_pending
from batchkit.store.database import connect


def _pending(env):
    with connect(env.job) as connection:
        return count_pending(connection, env.job, Selection())[0]


def test_missing_line_is_pending_again(make_env):
    env = make_env(6)
    lost = env.custom_ids()[2]

    env.run(extra_metadata=lambda _: {"sim_drop_output_lines": lost})
    env.run(poll_only=True, wait=True)

    attempts = env.attempts()
    failed = [a for a in attempts if a["status"] == "failed"]
    assert [a["custom_id"] for a in failed] == [lost]
    assert failed[0]["error_type"] == "missing_from_output"
    assert sum(a["status"] == "ok" for a in attempts) == 5
    assert _pending(env) == 1


def test_missing_line_is_resubmitted(make_env):
    env = make_env(6)
    lost = env.custom_ids()[2]
    env.run(extra_metadata=lambda _: {"sim_drop_output_lines": lost})
    env.run(poll_only=True, wait=True)

    summary = env.run(wait=True)

    resent = sorted(
        (a for a in env.attempts() if a["custom_id"] == lost),
        key=lambda attempt: attempt["attempt"],
    )
    assert [a["status"] for a in resent] == ["failed", "ok"]
    assert [a["attempt"] for a in resent] == [1, 2]
    assert summary.submitted == 1
    assert _pending(env) == 0


def test_shuffled_output_matches_by_custom_id(make_env):
    env = make_env(8)

    env.run(wait=True)

    (batch,) = env.sim_batches()
    output_ids = [
        line["custom_id"] for line in env.sim_file_lines(batch["output_file_id"])
    ]
    assert output_ids != sorted(output_ids)  # the simulator shuffled them
    by_id = {a["custom_id"]: a for a in env.attempts()}
    for line in env.sim_file_lines(batch["output_file_id"]):
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        assert by_id[line["custom_id"]]["content"] == content


def test_expired_batch_keeps_finished_lines(make_env):
    env = make_env(5)

    env.run(extra_metadata=lambda _: {"sim_expire_after": "3"})
    env.run(poll_only=True, wait=True)

    attempts = env.attempts()
    assert sum(a["status"] == "ok" for a in attempts) == 3
    expired = [a for a in attempts if a["status"] == "failed"]
    assert {a["error_type"] for a in expired} == {"batch_expired"}
    assert len(expired) == 2
    assert env.provider_batches()[0]["status"] == "expired"
    assert _pending(env) == 2


def test_completed_with_only_error_file(make_env):
    env = make_env(4)
    every_id = ",".join(env.custom_ids())

    env.run(extra_metadata=lambda _: {"sim_fail_lines": every_id})
    summary = env.run(poll_only=True, wait=True)

    (batch,) = env.provider_batches()
    assert batch["status"] == "completed"
    assert batch["output_file_id"] is None
    assert batch["error_file_id"] is not None
    attempts = env.attempts()
    assert len(attempts) == 4
    assert {a["status"] for a in attempts} == {"failed"}
    assert all(a["error_message"] for a in attempts)
    assert all(a["http_status"] is not None for a in attempts)
    assert summary.ok == 0
    assert summary.failed == 4


def test_token_limit_failure_is_resubmitted(make_env, batch_simulator):
    env = make_env(10, max_lines=5)
    # Each line enqueues about 420 tokens, so one file of 5 fits and two do
    # not. The first batch runs slowly, so it is still live when the second
    # one is validated.
    batch_simulator.configure(batch_token_limit=3000)

    def slow_first(batch_file):
        return {"sim_lines_per_second": "8"} if batch_file.path.name < "00002" else {}

    env.run(wait=True, extra_metadata=slow_first)

    batches = env.provider_batches()
    failed = [b for b in batches if b["status"] == "failed"]
    assert len(failed) == 1
    assert "token_limit_exceeded" in failed[0]["error"]
    assert failed[0]["resubmit_after"] is not None
    assert sum(b["status"] == "completed" for b in batches) == 2
    attempts = env.attempts()
    assert sorted(a["custom_id"] for a in attempts) == env.custom_ids()
    assert {a["status"] for a in attempts} == {"ok"}
    assert {a["attempt"] for a in attempts} == {1}


def test_whole_failure_counts_no_attempt(make_env):
    env = make_env(3)

    env.run(extra_metadata=lambda _: {"sim_fail_batch": "token_limit_exceeded"})
    env.run(poll_only=True, wait=True)

    assert env.attempts() == []
    assert env.provider_batches()[0]["status"] == "failed"
    assert _pending(env) == 3


def test_limit_caps_run_across_wait_rounds(make_env):
    env = make_env(6)
    lost = env.custom_ids()[0]

    summary = env.run(
        selection=Selection(limit=3),
        wait=True,
        extra_metadata=lambda _: {"sim_drop_output_lines": lost},
    )

    assert summary.submitted == 3
    assert sorted(env.submitted_custom_ids()) == env.custom_ids()[:3]
    assert _pending(env) == 4  # the lost one and the three beyond the limit


def test_poll_only_submits_nothing(make_env):
    env = make_env(3)

    summary = env.run(poll_only=True, wait=True)

    assert summary.created == []
    assert env.sim_batches() == []
