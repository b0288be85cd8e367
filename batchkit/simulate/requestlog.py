"""The request log: one entry per chat completion request and per batch line.

An entry is written when the simulator decides the outcome, before any delay,
so a hung or padded request is in the log at once. Entries are plain
dicts with these keys:

    time               Unix time (seconds) the request arrived
    source             "http" or "batch"
    custom_id          the client's X-Request-Id or X-Client-Request-Id header,
                       or the batch line's custom_id; None when absent
    body_hash          16 hex digits of BLAKE2b over the request body
    batch_id           the batch of a batch line, else None
    model, stream      from the request body (None when it did not parse)
    status             the HTTP status, or None when no status line was sent
    error              why the request was rejected or failed, else None:
                       unauthorized, invalid_request, context_length,
                       rate_limit_requests, rate_limit_tokens, concurrency,
                       fault, batch_failed_line
    fault              the fault served (see batchkit.simulate.faults), else None
    padded             True when blank lines preceded the body
    prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens

The statistics are kept as counters, so they stay correct after the oldest
entries leave the in-memory log (it keeps `log_max_entries`); the log file, if
any, keeps every entry.
"""

import asyncio
import time
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

FLUSH_SECONDS = 0.5


class RequestLog:
    """The log of served requests and the statistics over it."""

    def __init__(self, max_entries: int, path: str | None = None) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._file: IO[bytes] | None = None
        if path is not None:
            # The file stays open for the server's lifetime; close() ends it.
            self._file = Path(path).open("ab")  # noqa: SIM115
        self.clear()

    def clear(self) -> None:
        """Forget every entry and statistic; the log file keeps what it has."""
        self.entries.clear()
        self.total = 0
        self.by_status: Counter[str] = Counter()
        self.by_error: Counter[str] = Counter()
        self.by_fault: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.padded = 0
        self.duplicates_ok = 0
        self.max_in_flight = 0
        self._served_ok: set[str] = set()
        # Arrival times of requests that passed the rate caps, for the windows.
        self._admitted = array("d")

    def add(self, entry: dict[str, Any], *, is_admitted: bool) -> None:
        """Append `entry` and count it; `is_admitted` marks it counted by the caps."""
        self.entries.append(entry)
        self.total += 1
        status = entry["status"]
        self.by_status[str(status) if status is not None else "none"] += 1
        self.by_source[entry["source"]] += 1
        if entry["error"] is not None:
            self.by_error[entry["error"]] += 1
        if entry["fault"] is not None:
            self.by_fault[entry["fault"]] += 1
        if entry["padded"]:
            self.padded += 1
        for name in ("prompt", "completion", "reasoning", "cached"):
            self.tokens[name] += entry[f"{name}_tokens"]
        if status == 200 and entry["fault"] not in ("truncate", "drop", "hang"):
            self._count_duplicate(entry["body_hash"])
        if is_admitted:
            # The admission time, which is later than the arrival when padded.
            self._admitted.append(time.time())
        if self._file is not None:
            self._file.write(orjson.dumps(entry) + b"\n")

    def _count_duplicate(self, body_hash: str) -> None:
        if body_hash in self._served_ok:
            self.duplicates_ok += 1
        else:
            self._served_ok.add(body_hash)

    async def flush_periodically(self) -> None:
        """Flush the log file every FLUSH_SECONDS until cancelled."""
        while self._file is not None:
            self._file.flush()
            await asyncio.sleep(FLUSH_SECONDS)

    def close(self) -> None:
        """Flush and close the log file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def stats(self, in_flight: int) -> dict[str, Any]:
        """Return the statistics as a JSON-ready dict."""
        admitted = self._admitted
        return {
            "requests": self.total,
            "by_status": dict(self.by_status),
            "by_error": dict(self.by_error),
            "by_fault": dict(self.by_fault),
            "by_source": dict(self.by_source),
            "padded": self.padded,
            "duplicates_ok": self.duplicates_ok,
            "tokens": {name: self.tokens[name] for name in _TOKEN_NAMES},
            "in_flight": in_flight,
            "max_in_flight": self.max_in_flight,
            "admitted": len(admitted),
            "per_minute": count_per_window(admitted, 60.0),
            "max_per_60s": max_in_window(admitted, 60.0),
            "max_per_second": max_in_window(admitted, 1.0),
        }


_TOKEN_NAMES = ("prompt", "completion", "reasoning", "cached")


def count_per_window(times: array, seconds: float) -> list[int]:
    """Return the counts of `times` in consecutive windows from the first one."""
    if not times:
        return []
    start = times[0]
    counts: list[int] = []
    for stamp in times:
        index = int((stamp - start) // seconds)
        while len(counts) <= index:
            counts.append(0)
        counts[index] += 1
    return counts


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """Return the most `times` (ascending) that fall in any window of `seconds`."""
    best = 0
    left = 0
    for right, stamp in enumerate(times):
        while stamp - times[left] >= seconds:
            left += 1
        best = max(best, right - left + 1)
    return best
