"""`batchkit execute --mode batch` as a user runs it: a separate process."""

import os
import signal
import subprocess
import sys
import time


def _batchkit(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        cwd=env.job.path.parent,
    )


def test_cli_batch_wait_prints_totals(make_env):
    env = make_env(3)

    done = _batchkit(
        env, "execute", "-j", str(env.job.path), "--mode", "batch", "--wait"
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "total: 3 ok, 0 failed, 0 pending in live batches"
    assert lines[0].startswith("batch_")
    assert ": completed, 3 requests" in lines[0]
    assert len(env.attempts()) == 3


def test_cli_batch_without_batch_api(make_env, server_without_batches):
    env = make_env(1)

    done = _batchkit(
        env,
        "execute",
        "-j",
        str(env.job.path),
        "--mode",
        "batch",
        "--base-url",
        server_without_batches,
    )

    assert done.returncode == 1
    assert done.stderr.startswith("Error: ")
    assert "this endpoint has no batch API" in done.stderr
    assert "use --mode stream" in done.stderr


def test_cli_killed_while_waiting_only_polls(make_env, batch_simulator):
    env = make_env(4)
    batch_simulator.configure(batch_lines_per_second=2.0)
    command = [sys.executable, "-m", "batchkit.cli.main", "execute"]
    command += ["-j", str(env.job.path), "--mode", "batch", "--wait"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        # The run log gets the line after the batch is recorded in the database.
        deadline = time.monotonic() + 60
        while not _log_mentions(env, "created batch"):
            assert time.monotonic() < deadline, "the batch was never created"
            assert process.poll() is None, "batchkit ended before it was killed"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    batch_simulator.configure(batch_lines_per_second=2000.0)

    summary = env.run(wait=True)

    assert summary.created == []
    assert summary.adopted == []
    assert len(env.sim_batches()) == 1
    attempts = env.attempts()
    assert sorted(a["custom_id"] for a in attempts) == env.custom_ids()
    assert {a["status"] for a in attempts} == {"ok"}


def _log_mentions(env, text):
    logs = env.job.logs_dir
    if not logs.exists():
        return False
    return any(text in path.read_text() for path in logs.glob("*.log"))
