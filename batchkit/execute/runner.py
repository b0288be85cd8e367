"""The stream runner: send pending requests one by one, as fast as the caps allow.

One dispatcher task takes the next request (a due retry first, else the next
pending one), waits for a concurrency slot, the request pacer and the token
window, and starts an attempt task. Each attempt is appended to the response
log before it counts as done. A failed attempt is retried after a backoff,
unless the request is out of attempts, in which case a later run picks it up.

The job database is opened only between requests (to read chunks of pending
requests), never while requests are in flight by this code.
"""

import asyncio
import contextlib
import heapq
import itertools
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchkit.execute.budget import Budget, worst_case_cost
from batchkit.execute.limits import (
    AdaptiveLimits,
    ConcurrencyGate,
    RequestPacer,
    TokenWindow,
)
from batchkit.execute.progress import ExecuteProgress, RunSnapshot, SilentProgress
from batchkit.execute.records import (
    add_failure,
    base_record,
    completion_columns,
    redact,
    usage_cost,
)
from batchkit.execute.responselog import ResponseLog
from batchkit.execute.retry import RetryPolicy, is_counted, should_retry
from batchkit.execute.select import PendingRequest, Selection, iter_pending
from batchkit.execute.send import Reply, Sender
from batchkit.job.model import Job
from batchkit.providers.endpoint import Endpoint
from batchkit.providers.errors import (
    EndpointUnreachableError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    RunStoppingError,
)
from batchkit.providers.protocol import request_body

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
# Connection failures before the run's first success that stop it: the base
# URL is wrong or the server is down, and every request would fail alike.
UNREACHABLE_AFTER = 20


class CancelledAttemptError(ProviderError):
    """The user cancelled the run while this request was in flight."""

    error_type = "cancelled"


@dataclass
class StreamSettings:
    """The caps and knobs of one stream run (already merged with the job file)."""

    rpm: int
    tpm: int | None
    concurrency: int
    max_cost: float | None = None
    off_peak: bool = False
    grace_seconds: float = 30.0  # wait for in-flight requests after Ctrl-C
    chunk_size: int = 1000
    compact_rows: int = 5000
    compact_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    handle_signals: bool = True


@dataclass
class Work:
    """A request being worked on in this run, with its retry state."""

    request: PendingRequest
    body: bytes
    logged: int  # attempts in the log for this request version
    counted: int  # of those, the ones that count towards max_attempts
    attempt_limit: int  # the value of `counted` at which retries stop
    backoff_steps: int = 0
    rate_limited: int = 0


@dataclass
class RunCounts:
    """Counters of one run."""

    ok: int = 0
    failed: int = 0
    attempts: int = 0
    retries: int = 0
    cancelled: int = 0


class StreamRun:
    """One stream run: dispatcher, attempts, retries, stop handling."""

    def __init__(
        self,
        job: Job,
        selection: Selection,
        settings: StreamSettings,
        endpoint: Endpoint,
        log: ResponseLog,
        *,
        total: int,
        budget: Budget,
        progress: ExecuteProgress | None = None,
    ) -> None:
        self.job = job
        self.selection = selection
        self.settings = settings
        self.endpoint = endpoint
        self.log = log
        self.total = total
        self.budget = budget
        self.progress = progress or SilentProgress()
        self.counts = RunCounts()
        self._connection_failures = 0  # before the run's first success
        self.pacer = RequestPacer(settings.rpm)
        self.tokens = TokenWindow(settings.tpm)
        self.gate = ConcurrencyGate(settings.concurrency)
        self.adaptive = AdaptiveLimits(self.pacer, self.tokens, self.gate)
        self.stop_reason: str | None = None
        self.stop_message: str | None = None
        self.stop_error: RunStoppingError | None = None
        # An unexpected error (the response log cannot be written, a bug):
        # the run stops and run_stream raises it once the rest is saved.
        self.fatal_error: BaseException | None = None
        self.waiting_until = 0.0
        self.waiting_reason: str | None = None
        self._fresh: list[Work] = []
        self._retries: list[tuple[float, int, Work]] = []
        self._sequence = itertools.count(1)
        self._chunks: Iterator[list[PendingRequest]] | None = None
        self._reading: asyncio.Future[list[PendingRequest] | None] | None = None
        self._exhausted = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._signals = 0
        self._started = time.monotonic()
        self._dispatcher: asyncio.Task[None] | None = None
        self._max_attempts = {s.name: s.max_attempts for s in job.stages}
        self._sender: Sender | None = None
        self._last_rate_limit_log = -1.0
        self._unlogged_rate_limits = 0

    # The run as a whole.

    async def run(self) -> None:
        """Send every selected request, then wait for the last ones in flight."""
        self._install_signals()
        ticker = asyncio.create_task(self._tick())
        try:
            async with Sender(
                self.endpoint, self.job.provider, self.settings.concurrency
            ) as sender:
                self._sender = sender
                self._dispatcher = asyncio.create_task(self._dispatch_all())
                try:
                    await self._dispatcher
                except asyncio.CancelledError:
                    if self.stop_reason is None:
                        raise
                await self._drain()
        finally:
            ticker.cancel()
            self._remove_signals()
            if self._reading is not None and not self._reading.done():
                await asyncio.wait([self._reading])
            if self._chunks is not None:
                self._chunks.close()  # type: ignore[attr-defined]
            self.progress.update(self.snapshot())

    def stop(self, reason: str, message: str) -> None:
        """Stop dispatching; requests in flight may finish."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.stop_message = message
        logger.warning("stopping run %s: %s", self.log.run_id, message)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        self._wake.set()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        grace = self.settings.grace_seconds
        if self.stop_reason != "interrupted":
            await asyncio.gather(*self._tasks, return_exceptions=True)
            return
        logger.info(
            "waiting up to %s s for %s requests in flight", grace, len(self._tasks)
        )
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        if pending:
            self.cancel_in_flight()
            await asyncio.gather(*pending, return_exceptions=True)

    def cancel_in_flight(self) -> None:
        """Cancel every request in flight; each is logged as a cancelled attempt."""
        for task in list(self._tasks):
            task.cancel()

    # Signals: the first Ctrl-C (or SIGTERM) stops dispatching, the second
    # cancels what is in flight.

    def _install_signals(self) -> None:
        if not self.settings.handle_signals:
            return
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, self._on_signal, number)

    def _remove_signals(self) -> None:
        if not self.settings.handle_signals:
            return
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)

    def _on_signal(self, number: int) -> None:
        self._signals += 1
        name = signal.Signals(number).name
        if self._signals == 1:
            self.stop(
                "interrupted",
                f"{name}: no new requests; waiting up to "
                f"{self.settings.grace_seconds:g} s for those in flight",
            )
        else:
            logger.warning("%s again: cancelling %s requests", name, len(self._tasks))
            self.cancel_in_flight()

    # Choosing the next request.

    async def _refill(self) -> None:
        if self._chunks is None:
            self._chunks = iter_pending(
                self.job, self.selection, chunk_size=self.settings.chunk_size
            )
        # The read runs in a thread. It is shielded, so a stop waits for the
        # read to end and never closes the iterator in the middle of one.
        self._reading = asyncio.ensure_future(
            asyncio.to_thread(next, self._chunks, None)
        )
        chunk = await asyncio.shield(self._reading)
        if chunk is None:
            self._exhausted = True
            return
        self._fresh = [self._new_work(request) for request in reversed(chunk)]

    def _new_work(self, request: PendingRequest) -> Work:
        limit = self._max_attempts.get(request.stage, 1)
        if self.selection.only_failed:
            # The user asked for these again, so they get a fresh set of attempts.
            limit += request.attempts
        return Work(
            request=request,
            body=request_body(request.line),
            logged=request.logged_attempts,
            counted=request.attempts,
            attempt_limit=limit,
        )

    async def _next_work(self) -> Work | None:
        while True:
            now = time.monotonic()
            if self._retries and self._retries[0][0] <= now:
                return heapq.heappop(self._retries)[2]
            if self._fresh:
                return self._fresh.pop()
            if not self._exhausted:
                await self._refill()
                continue
            if not self._retries and not self._tasks:
                return None
            timeout = self._retries[0][0] - now if self._retries else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _wait_for_completion(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    async def _wait_off_peak(self, model: str) -> None:
        from batchkit.execute.offpeak import offpeak_wait_seconds

        while True:
            wait = offpeak_wait_seconds(self.job, model, datetime.now(UTC))
            if not wait:
                self.waiting_reason = None
                return
            if self.waiting_reason is None:
                logger.info("off-peak: waiting %.0f s for %s's window", wait, model)
            self.waiting_until = time.monotonic() + wait
            self.waiting_reason = f"off-peak window of {model}"
            await asyncio.sleep(min(wait, 1.0))

    async def _within_budget(self, work: Work) -> float | None:
        """Return the request's worst-case cost once it fits the budget, else None."""
        request = work.request
        worst = worst_case_cost(
            self.job,
            request.model,
            request.prompt_tokens_est,
            request.max_tokens,
            datetime.now(UTC),
        )
        worst = worst or 0.0
        while not self.budget.fits(worst):
            if not self._tasks:
                self.stop("budget", self._budget_message(request.custom_id, worst))
                return None
            await self._wait_for_completion()
        return worst

    def _budget_message(self, custom_id: str, worst: float) -> str:
        limit = self.budget.limit or 0.0
        if self.budget.total >= limit:
            return (
                f"the job has already spent ${self.budget.total:.4f}, which is "
                f"--max-cost {limit:g} or more"
            )
        return (
            f"the next request ({custom_id}, up to ${worst:.4f}) could take the "
            f"spend of ${self.budget.total:.4f} over --max-cost {limit:g}"
        )

    # Dispatching.

    async def _dispatch_all(self) -> None:
        while self.stop_reason is None:
            work = await self._next_work()
            if work is None:
                return
            if not await self._dispatch(work):
                return

    async def _dispatch(self, work: Work) -> bool:
        request = work.request
        if self.settings.off_peak:
            await self._wait_off_peak(request.model)
        worst = await self._within_budget(work)
        if worst is None:
            return False
        await self.gate.acquire()
        try:
            await self.pacer.acquire()
            tokens = request.prompt_tokens_est + request.max_tokens
            entry = await self.tokens.acquire(tokens)
        except BaseException:
            self.gate.release()
            raise
        self.budget.reserve(worst)
        task = asyncio.create_task(self._attempt(work, entry, worst))
        self._tasks.add(task)
        task.add_done_callback(self._attempt_done)
        return True

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        # Leave the set before waking the dispatcher, which checks it for the end.
        self._tasks.discard(task)
        self._wake.set()
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        logger.error("run %s failed: %s", self.log.run_id, error, exc_info=error)
        self.fatal_error = error
        self.stop("error", f"{type(error).__name__}: {error}")

    # One attempt.

    async def _attempt(self, work: Work, entry: list[float], worst: float) -> None:
        assert self._sender is not None
        started_at = datetime.now(UTC)
        began = time.perf_counter()
        reply: Reply | None = None
        error: ProviderError | None = None
        try:
            reply = await self._sender.send(work.request.custom_id, work.body)
        except ProviderError as failure:
            error = failure
        except asyncio.CancelledError:
            error = CancelledAttemptError("cancelled by the user while in flight")
        finally:
            self.gate.release()
        latency_ms = (time.perf_counter() - began) * 1000
        record = self._record(work, reply, error, started_at, latency_ms)
        self.log.append(record)
        self.counts.attempts += 1
        self.tokens.settle(entry, reply.completion.usage.total_tokens if reply else 0)
        self.budget.settle(worst, record.get("cost_usd"))
        self._after_attempt(work, error)

    def _record(
        self,
        work: Work,
        reply: Reply | None,
        error: ProviderError | None,
        started_at: datetime,
        latency_ms: float,
    ) -> dict[str, Any]:
        work.logged += 1
        record = base_record(
            work.request,
            attempt_id=f"{self.log.run_id}-{next(self._sequence):07d}",
            attempt=work.logged,
            run_id=self.log.run_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            latency_ms=latency_ms,
        )
        if error is not None:
            return add_failure(record, error, self.endpoint.api_key)
        assert reply is not None
        completion = reply.completion
        usage = completion.usage
        record.update(completion_columns(completion, work.request.model))
        record.update(
            http_status=reply.http_status,
            cost_usd=usage_cost(self.job, work.request.model, started_at, usage),
            raw_body=redact(reply.body, self.endpoint.api_key),
        )
        return record

    def _after_attempt(self, work: Work, error: ProviderError | None) -> None:
        custom_id = work.request.custom_id
        if error is None:
            self.counts.ok += 1
            self.adaptive.on_success()
            return
        if is_counted(error.error_type):
            work.counted += 1
        if isinstance(error, CancelledAttemptError):
            self.counts.cancelled += 1
            return
        if isinstance(error, RunStoppingError):
            self.counts.failed += 1
            self.stop_error = error
            self.stop("provider", f"{custom_id}: {error.error_type}: {error}")
            return
        if isinstance(error, RateLimitError):
            self._on_rate_limited(work, error)
        if isinstance(error, ProviderConnectionError) and self.counts.ok == 0:
            self._connection_failures += 1
            if self._connection_failures >= UNREACHABLE_AFTER:
                self._stop_unreachable(custom_id, error)
                return
        if self.stop_reason is None and should_retry(
            error, work.counted, work.attempt_limit, work.rate_limited
        ):
            self._schedule_retry(work, error)
            return
        self.counts.failed += 1
        logger.info(
            "%s failed for this run after %s attempts: %s: %s",
            custom_id,
            work.logged,
            error.error_type,
            redact(str(error), self.endpoint.api_key),
        )

    def _stop_unreachable(self, custom_id: str, error: ProviderError) -> None:
        self.counts.failed += 1
        self.stop_error = EndpointUnreachableError(
            f"{self._connection_failures} connection attempts failed and none "
            f"succeeded; the last one: {redact(str(error), self.endpoint.api_key)}"
        )
        self.stop("provider", f"{custom_id}: connection: {error}")

    def _on_rate_limited(self, work: Work, error: RateLimitError) -> None:
        work.rate_limited += 1
        if self.adaptive.on_rate_limited():
            logger.info(
                "429 from the provider: caps lowered to %.0f%% (%s in flight max)",
                self.adaptive.factor * 100,
                self.gate.limit,
            )
        if error.retry_after and self.adaptive.is_sustained:
            # While 429s are sustained, the header's wait applies to every
            # request; an occasional 429 delays only its own retry.
            self.pacer.pause(error.retry_after)
            self.waiting_until = time.monotonic() + error.retry_after
            self.waiting_reason = "rate limit reset"

    def _schedule_retry(self, work: Work, error: ProviderError) -> None:
        policy = self.settings.retry
        if error.retry_after is not None:
            delay = policy.header_wait(error.retry_after)
        else:
            delay = policy.backoff(work.backoff_steps)
            work.backoff_steps += 1
        self.counts.retries += 1
        self._log_retry(work, error, delay)
        ready_at = time.monotonic() + delay
        heapq.heappush(self._retries, (ready_at, next(self._sequence), work))

    def _log_retry(self, work: Work, error: ProviderError, delay: float) -> None:
        # A 429 storm would write thousands of lines, so 429 retries are
        # logged at most once a second, with the count of those left out.
        if isinstance(error, RateLimitError):
            now = time.monotonic()
            if now - self._last_rate_limit_log < 1.0:
                self._unlogged_rate_limits += 1
                return
            self._last_rate_limit_log = now
        logger.info(
            "%s: %s (%s); retry in %.2f s (%s of %s counted attempts used)%s",
            work.request.custom_id,
            error.error_type,
            redact(str(error), self.endpoint.api_key),
            delay,
            work.counted,
            work.attempt_limit,
            self._unlogged_suffix() if isinstance(error, RateLimitError) else "",
        )

    def _unlogged_suffix(self) -> str:
        count, self._unlogged_rate_limits = self._unlogged_rate_limits, 0
        return f"; {count} more 429 retries since the last line" if count else ""

    # Progress.

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.log.compact_if_due()
            self.progress.update(self.snapshot())

    def snapshot(self) -> RunSnapshot:
        """Return the run's state now."""
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        done = self.counts.ok + self.counts.failed
        # Over the first minute, the rate is extrapolated from at least 10 s.
        minute = min(max(elapsed, 10.0), 60.0) / 60.0
        eta = None
        if done and self.total > done:
            eta = (self.total - done) * elapsed / done
        waiting = max(0.0, self.waiting_until - now)
        return RunSnapshot(
            total=self.total,
            done=done,
            ok=self.counts.ok,
            failed=self.counts.failed,
            retrying=len(self._retries),
            in_flight=self.gate.in_flight,
            attempts=self.counts.attempts,
            requests_per_minute=round(self.pacer.last_minute() / minute),
            tokens_per_minute=round(self.tokens.last_minute() / minute),
            rpm_cap=self.pacer.rpm,
            elapsed_seconds=elapsed,
            tpm_cap=None
            if self.tokens.cap is None
            else self.tokens.cap * self.tokens.factor,
            concurrency_cap=self.gate.limit,
            spent_usd=self.budget.spent,
            budget_usd=self.budget.limit,
            eta_seconds=eta,
            waiting_seconds=waiting,
            waiting_reason=self.waiting_reason if waiting > 0 else None,
            stopping=self.stop_reason,
        )
