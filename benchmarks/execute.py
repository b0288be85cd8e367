"""Stream-mode execute against the simulator in a child process on loopback.

Three measurements, each beside its target:

- rate: 10,000 requests at a cap of 6,000 per minute with 200 ms latency;
  the achieved rate as a share of the cap, and the most requests the
  simulator saw in any 60 s and any 1 s window.
- uncapped: 20,000 short requests with no useful cap against a fast
  simulator; client CPU time per request (`time.process_time` of this
  process, which runs only the client) and requests per second.
- memory: 1,000,000 pending requests inserted straight into
  `request_versions`, selected and iterated by `iter_pending` in a fresh
  process; its peak resident memory (`VmHWM` in /proc/self/status).

`BATCHKIT_BENCH_SCALE` (default 1.0) multiplies every request count, for a
quick run: `BATCHKIT_BENCH_SCALE=0.1 python -m benchmarks execute`.
"""

import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batchkit.execute.select import Selection, iter_pending
from batchkit.execute.stream import StreamOptions, run_stream
from batchkit.job.loader import load_job
from batchkit.job.model import Job
from batchkit.simulate import run_in_subprocess
from batchkit.simulate.requestlog import max_in_window
from batchkit.store.database import connect
from tests.execute.jobfiles import KEY_ENV, prepared_job

SCALE = float(os.environ.get("BATCHKIT_BENCH_SCALE", "1.0"))
RATE_REQUESTS = 10_000
RATE_RPM = 6_000
RATE_LATENCY_MS = 200.0
UNCAPPED_REQUESTS = 20_000
UNCAPPED_RPM = 100_000_000  # far above anything reachable, so no cap applies
MEMORY_REQUESTS = 1_000_000
MEMORY_LINE_BYTES = 1_000
TARGET_CPU_MS = 0.5
TARGET_PER_SECOND = 2_000
TARGET_MEMORY_MB = 1_024
SIMULATOR_CPU = 1  # the simulator is pinned here; the client runs anywhere


def _scaled(count: int) -> int:
    return max(10, int(count * SCALE))


def _process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(job: Job, concurrency: int) -> tuple[float, float]:
    """Run stream mode; return the wall time and this process's CPU time."""
    wall = time.perf_counter()
    cpu = time.process_time()
    summary = run_stream(
        job,
        Selection(),
        StreamOptions(concurrency=concurrency, handle_signals=False),
    )
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    if summary.ok != summary.selected:
        print(f"  warning: {summary.selected - summary.ok} requests did not succeed")
    return wall, cpu


def bench_rate(folder: Path) -> None:
    """Print the achieved rate under a 6,000 per minute cap with 200 ms latency."""
    count = _scaled(RATE_REQUESTS)
    with run_in_subprocess(
        latency_ms=RATE_LATENCY_MS,
        latency_sigma=0.0,
        log_max_entries=count + 1_000,
        cpu=SIMULATOR_CPU,
    ) as simulator:
        os.environ[KEY_ENV] = simulator.api_key or ""
        job = prepared_job(
            folder / "rate",
            [f"prompt {n}" for n in range(count)],
            base_url=simulator.base_url,
            rpm=RATE_RPM,
            max_tokens=16,
        )
        wall, _ = _run(job, concurrency=64)
        times = sorted(entry["time"] for entry in simulator.log())
    span = times[-1] - times[0]
    achieved = (len(times) - 1) / span * 60 if span > 0 else 0.0
    print(f"rate: {len(times):,} requests in {wall:.1f} s at a cap of {RATE_RPM:,}/min")
    print(
        f"  achieved {achieved:,.0f}/min = {achieved / RATE_RPM:.1%} of the cap "
        "(target >= 97 %)"
    )
    print(
        f"  max in any 60 s: {max_in_window(times, 60.0):,} (cap {RATE_RPM:,}); "
        f"max in any 1 s: {max_in_window(times, 1.0)} "
        f"(limit {1.1 * RATE_RPM / 60:.0f})"
    )


def bench_uncapped(folder: Path) -> None:
    """Print client CPU per request and requests per second with no cap."""
    count = _scaled(UNCAPPED_REQUESTS)
    with run_in_subprocess(
        log_max_entries=count + 1_000, cpu=SIMULATOR_CPU
    ) as simulator:
        os.environ[KEY_ENV] = simulator.api_key or ""
        job = prepared_job(
            folder / "uncapped",
            [f"hi {n}" for n in range(count)],
            base_url=simulator.base_url,
            rpm=UNCAPPED_RPM,
            max_tokens=8,
        )
        server_cpu = _process_cpu_seconds(simulator.pid)
        wall, cpu = _run(job, concurrency=64)
        server_cpu = _process_cpu_seconds(simulator.pid) - server_cpu
    print(f"uncapped: {count:,} requests in {wall:.2f} s")
    print(
        f"  {count / wall:,.0f} requests/s (target >= {TARGET_PER_SECOND:,}); "
        f"client CPU {cpu / count * 1000:.3f} ms per request "
        f"(target <= {TARGET_CPU_MS} ms)"
    )
    print(
        f"  simulator CPU {server_cpu / count * 1000:.3f} ms per request, "
        f"{server_cpu / wall:.0%} of one core"
    )


def _insert_pending(job: Job, count: int) -> None:
    filler = "x" * MEMORY_LINE_BYTES
    with connect(job) as connection:
        connection.execute(
            """
            INSERT INTO request_versions
            SELECT 'doc:' || lpad(i::VARCHAR, 8, '0'), 'h' || i::VARCHAR, 'doc',
                   lpad(i::VARCHAR, 8, '0'), 'deepseek-chat',
                   '{"custom_id":"doc:' || i::VARCHAR || '","body":{"x":"'
                       || ? || '"}}',
                   ?, 10, 16, NULL, now(), NULL
            FROM range(?) t(i)
            """,
            [filler, MEMORY_LINE_BYTES, count],
        )


def _iterate(job_path: str, results: Any) -> None:
    job = load_job(job_path)
    started = time.perf_counter()
    rows = 0
    for chunk in iter_pending(job, Selection()):
        rows += len(chunk)
    results.put((rows, time.perf_counter() - started, _peak_rss_kb()))


def _peak_rss_kb() -> int:
    """Return this process's peak resident memory in KiB since it started.

    `ru_maxrss` would not do: Linux keeps it across fork and exec, so a
    spawned child reports its parent's peak when that is higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_memory(folder: Path) -> None:
    """Print the peak memory of selecting and iterating 1,000,000 pending rows."""
    count = _scaled(MEMORY_REQUESTS)
    job = prepared_job(folder / "memory", ["seed"])
    _insert_pending(job, count)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_iterate, args=(str(job.path), results))
    child.start()
    rows, seconds, peak_kb = results.get()
    child.join()
    print(
        f"memory: {rows:,} pending requests of {MEMORY_LINE_BYTES:,} byte lines "
        f"selected and iterated in {seconds:.1f} s"
    )
    print(
        f"  peak resident memory {peak_kb / 1024:,.0f} MB "
        f"(target < {TARGET_MEMORY_MB:,} MB)"
    )


def run() -> None:
    """Run the three execute benchmarks and print their figures."""
    print(f"scale {SCALE:g}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-execute-") as name:
        folder = Path(name)
        bench_uncapped(folder)
        bench_memory(folder)
        bench_rate(folder)


if __name__ == "__main__":
    run()
