"""`make demo`: the example job end to end against local stand-ins.

Starts `batchkit simulate` on a free port of 127.0.0.1 (DeepSeek-like: latency,
a few 429s and 5xx, keep-alive padding, scaled down in time) and a throwaway
PostgreSQL cluster as the stand-in for Supabase, then runs the real CLI:
prepare → execute → prepare → execute → load, and prints the status, the
estimate against the actual cost, the report and queries to try. It stops
what it started, also after Ctrl-C.
"""

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

from batchkit.localpg import LocalPostgresError, find_server_binaries, local_postgres

JOB = Path("jobs/demo/job.toml")
RUN_DIR = Path("runs/demo")

# DeepSeek-like behaviour, scaled so the demo takes a few minutes.
SIMULATOR_OPTIONS = [
    "--rpm",
    "6000",
    "--latency",
    "400",
    "--time-scale",
    "0.1",
    "--fault-rate",
    "429=0.02",
    "--fault-rate",
    "500=0.01",
    "--fault-rate",
    "503=0.005",
    "--fault-rate",
    "length=0.01",
    "--pad-rate",
    "0.02",
    "--seed",
    "7",
]

ESTIMATE_QUERY = (
    "SELECT stage, estimated_requests AS requests, "
    "round(estimated_max_cost_usd, 2) AS estimated_max_usd, "
    "round(cost_usd, 4) AS actual_usd, round(spent_share, 3) AS share "
    "FROM estimate_vs_actual"
)

QUERIES = [
    (
        "cost per template, most expensive first",
        "SELECT i.item->>'template_id' AS template, round(sum(a.cost_usd), 4) AS usd "
        "FROM attempts a JOIN items i USING (item_key) GROUP BY 1 ORDER BY 2 DESC "
        "LIMIT 5",
    ),
    (
        "rejects by reason",
        "SELECT stage, reason_name, count(*) AS results FROM rejects GROUP BY ALL "
        "ORDER BY 3 DESC",
    ),
    (
        "p95 latency per stage",
        "SELECT * FROM latency",
    ),
]


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _batchkit(*arguments: str, check: bool = True) -> int:
    command = [sys.executable, "-m", "batchkit.cli.main", *arguments]
    shown = "batchkit " + " ".join(shlex.quote(a) for a in arguments)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(command, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"demo: `{shown}` failed with exit code {result.returncode}")
    return result.returncode


def _start_simulator(api_key: str, stack: ExitStack) -> str:
    command = [
        sys.executable,
        "-m",
        "batchkit.cli.main",
        "simulate",
        "--port",
        "0",
        "--api-key",
        api_key,
        *SIMULATOR_OPTIONS,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    stack.callback(_stop, process)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http://127.0.0.1"):
        raise SystemExit(f"demo: the simulator did not start (printed {base_url!r})")
    return base_url


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _count_rows(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM template_versions").fetchone()
        return int(row[0]) if row else 0


def run_demo() -> None:
    """Run the demo pipeline and stop everything it started."""
    if not JOB.exists():
        raise SystemExit("demo: run it from the repository root (make demo)")
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    started = time.monotonic()
    # A fresh random key for the simulator: it is a secret for this run only,
    # and a test checks that it appears in no file the run wrote.
    api_key = "sk-demo-" + secrets.token_hex(16)
    with ExitStack() as stack:
        _say("starting the provider simulator on 127.0.0.1")
        base_url = _start_simulator(api_key, stack)
        print(f"simulator: {base_url}")
        os.environ["BATCHKIT_DEMO_API_KEY"] = api_key
        os.environ["BATCHKIT_BASE_URL"] = base_url

        database_url = None
        if find_server_binaries() is None:
            print("PostgreSQL server binaries not found: load writes Parquet instead.")
        else:
            _say("starting a throwaway PostgreSQL cluster (the stand-in for Supabase)")
            try:
                database_url = stack.enter_context(local_postgres("demo")).url
                os.environ["BATCHKIT_DEMO_DB_URL"] = database_url
                print(f"postgres: {database_url}")
            except LocalPostgresError as error:
                print(
                    f"PostgreSQL did not start ({error}); load writes Parquet instead."
                )

        job = str(JOB)
        _say("prepare: render doc_en and mdc_en for 25 products × 32 templates")
        _batchkit("prepare", "-j", job)
        _say("execute: send them to the simulator")
        _batchkit("execute", "-j", job)
        _say("prepare again: the translations render from the valid English results")
        _batchkit("prepare", "-j", job)
        _say("execute the translations")
        _batchkit("execute", "-j", job)
        _say("load the valid results")
        load_arguments = ["load", "-j", job]
        if database_url:
            load_arguments.append("--create-table")
        _batchkit(*load_arguments)
        if database_url:
            print(f"template_versions now holds {_count_rows(database_url)} rows")

        _say("resend the rejected results (cut off at max_tokens), then finish")
        _batchkit("execute", "-j", job, "--only-failed")
        _batchkit("prepare", "-j", job)
        _batchkit("execute", "-j", job)
        _batchkit("load", "-j", job)
        if database_url:
            print(f"template_versions now holds {_count_rows(database_url)} rows")

        _say("status")
        _batchkit("status", "-j", job)
        _say("estimate against actual cost")
        _batchkit("sql", "-j", job, ESTIMATE_QUERY)
        _say("report")
        _batchkit("report", "-j", job)

    elapsed = time.monotonic() - started
    _say(f"demo finished in {elapsed:.0f} s; the simulator and PostgreSQL are stopped")
    print("Queries to try on the job database (runs/demo/batchkit.duckdb):")
    for title, query in QUERIES:
        print(f'\n-- {title}\n.venv/bin/batchkit sql -j {job} "{query}"')


if __name__ == "__main__":
    run_demo()
