"""How many chat completions per second the simulator serves on one core.

The simulator runs as a child process pinned to CPU 0; a separate load
process pinned to CPU 1 keeps 64 requests in flight over 64 keep-alive
connections.
Two request kinds are timed: one trivial body sent again and again (its
text comes from the simulator's cache), and distinct document prompts of
2,000–4,000 characters, each generated afresh. The figures are served
requests per second and the server's CPU time per request. Run it alone
with `python -m benchmarks simulator`.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

from batchkit.simulate import run_in_subprocess

CONCURRENCY = 64
TARGET_PER_SECOND = 2_000
WARMUP_REQUESTS = 2_000
# (kind, requests): "trivial" repeats one short body, "document" sends
# distinct prompts that each need new text.
RUNS = (("trivial", 30_000), ("document", 10_000))
_CONTENT_LENGTH = re.compile(rb"(?i)content-length: *(\d+)")
TRIVIAL_PROMPT = "Say hello in one short sentence."
DOCUMENT_PROMPT = (
    "Write a technical architecture document in Markdown for product {index}. "
    "Length: 2,000–4,000 characters. Write in English."
)


def _body(kind: str, index: int) -> bytes:
    if kind == "trivial":
        content, max_tokens = TRIVIAL_PROMPT, 16
    else:
        content, max_tokens = DOCUMENT_PROMPT.format(index=index), 4_000
    message = {"role": "user", "content": content}
    body = {"model": "deepseek-chat", "messages": [message], "max_tokens": max_tokens}
    return json.dumps(body).encode()


async def _send_all(base_url: str, api_key: str, kind: str, count: int) -> int:
    # A bare HTTP/1.1 keep-alive client on asyncio streams: it costs less CPU
    # per request than aiohttp's client, so the figure shows the server more.
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    requests = [
        _request_bytes(url.hostname, url.port, api_key, kind, i) for i in range(count)
    ]
    next_index = 0
    ok = 0

    async def worker() -> None:
        nonlocal next_index, ok
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        while next_index < count:
            request = requests[next_index]
            next_index += 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(_CONTENT_LENGTH.search(head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            ok += head.startswith(b"HTTP/1.1 200")
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return ok


def _request_bytes(host: str, port: int, api_key: str, kind: str, index: int) -> bytes:
    body = _body(kind, index)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def generate_load(base_url: str, api_key: str, kind: str, count: int) -> None:
    """Send `count` requests of `kind`, 64 in flight; print JSON figures."""
    started = time.perf_counter()
    ok = asyncio.run(_send_all(base_url, api_key, kind, count))
    elapsed = time.perf_counter() - started
    print(json.dumps({"ok": ok, "seconds": elapsed}), flush=True)


def _load_command(base_url: str, api_key: str, kind: str, count: int) -> list[str]:
    code = (
        "import sys; from benchmarks.simulator import generate_load; "
        "generate_load(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))"
    )
    command = [sys.executable, "-c", code, base_url, api_key, kind, str(count)]
    if _can_pin():
        command = ["taskset", "-c", "1", *command]
    return command


def _can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1


def _cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat are user and system time in ticks.
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_load(base_url: str, api_key: str, kind: str, count: int) -> dict[str, float]:
    finished = subprocess.run(
        _load_command(base_url, api_key, kind, count),
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(finished.stdout)
    return figures


def run() -> None:
    """Print the simulator's throughput beside the 2,000 requests/s target."""
    for kind, count in RUNS:
        with run_in_subprocess(cpu=0 if _can_pin() else None, quiet=True) as server:
            api_key = server.api_key or ""
            _run_load(server.base_url, api_key, "trivial", WARMUP_REQUESTS)
            cpu_before = _cpu_seconds(server.pid)
            figures = _run_load(server.base_url, api_key, kind, count)
            cpu_used = _cpu_seconds(server.pid) - cpu_before
        per_second = figures["ok"] / figures["seconds"]
        target = ""
        if kind == "trivial":
            verdict = "ok" if per_second >= TARGET_PER_SECOND else "BELOW TARGET"
            target = f" (target {TARGET_PER_SECOND:,}/s: {verdict})"
        print(
            f"simulator, {kind}: {figures['ok']:,.0f} of {count:,} completions in "
            f"{figures['seconds']:.2f} s = {per_second:,.0f}/s with {CONCURRENCY} "
            f"in flight{target}; server CPU {cpu_used / count * 1000:.3f} ms "
            "per request"
        )
