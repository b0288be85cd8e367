"""`batchkit execute --mode batch` as a user runs it: a separate process."""

import os
import subprocess
import sys


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
