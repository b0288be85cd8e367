"""A full run: prepare → submit → poll until completed → one ok attempt each."""

from batchkit.job.prices import attempt_cost


def test_round_trip_logs_one_ok_per_request(make_env):
    env = make_env(12, max_lines=5)

    summary = env.run(wait=True)

    attempts = env.attempts()
    assert sorted(a["custom_id"] for a in attempts) == env.custom_ids()
    assert {a["status"] for a in attempts} == {"ok"}
    assert {a["mode"] for a in attempts} == {"batch"}
    assert {a["attempt"] for a in attempts} == {1}
    assert len(summary.created) == 3
    assert summary.ok == 12
    assert summary.failed == 0
    assert summary.pending == 0
    batches = env.provider_batches()
    assert {b["status"] for b in batches} == {"completed"}
    assert all(b["ingested_at"] is not None for b in batches)
    assert {a["batch_id"] for a in attempts} == {b["batch_id"] for b in batches}


def test_round_trip_applies_batch_discount(make_env):
    env = make_env(3)

    env.run(wait=True)

    for attempt in env.attempts():
        full = attempt_cost(
            env.job.prices,
            "gpt-4o-mini",
            attempt["started_at"],
            cache_miss_tokens=attempt["cache_miss_tokens"],
            cache_hit_tokens=attempt["cache_hit_tokens"],
            completion_tokens=attempt["completion_tokens"],
        )
        assert attempt["completion_tokens"] > 0
        assert attempt["content"]
        assert full is not None
        assert abs(attempt["cost_usd"] - full * 0.5) < 1e-12


def test_round_trip_times_come_from_batch(make_env):
    env = make_env(2)

    env.run(wait=True)

    (batch,) = env.provider_batches()
    for attempt in env.attempts():
        assert attempt["started_at"] == batch["created_at"]
        assert attempt["finished_at"] == batch["finished_at"]


def test_summary_lines_name_batches(make_env):
    env = make_env(4, max_lines=2)

    summary = env.run(wait=True)

    lines = summary.lines()
    for batch_id in summary.created:
        assert any(line.startswith(f"{batch_id}: completed") for line in lines)
    assert lines[-1] == "total: 4 ok, 0 failed, 0 pending in live batches"
