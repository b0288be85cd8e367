"""The simulator's shared state: settings, caps, caches, stores and the log.

Everything here runs on the server's event loop thread, so nothing is locked.
"""

import hashlib
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from batchkit.simulate.batches import Batch, BatchStore, LineResult
from batchkit.simulate.completion import (
    CONTENT_FAULTS,
    STATUS_FAULTS,
    ChatRequest,
    Completion,
    InvalidRequest,
    build_completion,
    completion_body,
    error_body,
    fault_error_body,
    new_id,
    parse_chat_request,
)
from batchkit.simulate.config import STARTUP_ONLY, SimulatorConfig
from batchkit.simulate.content import ContentGenerator
from batchkit.simulate.errors import SimulatorConfigError
from batchkit.simulate.faults import (
    NO_FAULT,
    Marker,
    MarkerError,
    Plan,
    draw_uniforms,
    parse_markers,
    plan_from_markers,
    plan_from_rates,
)
from batchkit.simulate.files import FileStore
from batchkit.simulate.limits import RateLimiter
from batchkit.simulate.requestlog import RequestLog
from batchkit.simulate.tokens import PrefixCache

logger = logging.getLogger(__name__)


def hash_body(raw: bytes) -> str:
    """Return the 16-hex-digit BLAKE2b hash that identifies a request body."""
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def new_entry(
    source: str, custom_id: str | None, body_hash: str, batch_id: str | None = None
) -> dict[str, Any]:
    """Return a request log entry with its outcome fields still empty."""
    return {
        "time": time.time(),
        "source": source,
        "custom_id": custom_id,
        "body_hash": body_hash,
        "batch_id": batch_id,
        "model": None,
        "stream": None,
        "status": None,
        "error": None,
        "fault": None,
        "padded": False,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
    }


class SimulatorState:
    """Settings, rate caps, caches, files, batches and the request log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.limiter = RateLimiter(config)
        self.log = RequestLog(config.log_max_entries, config.log_file)
        self.generator = ContentGenerator(config.seed, config.default_chars)
        self.prefix_cache = PrefixCache()
        self.files = FileStore()
        self.batches = BatchStore(self.files, self.serve_line, config)
        self._arrivals: dict[str, int] = {}

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply setting changes at run time; raise SimulatorConfigError."""
        fixed = sorted(set(changes) & STARTUP_ONLY)
        if fixed:
            raise SimulatorConfigError(
                f"simulator setting {', '.join(fixed)} takes effect only at start; "
                "restart the simulator to change it"
            )
        self._apply(self.config.replace(**changes))
        logger.info("simulator settings changed: %s", ", ".join(sorted(changes)))
        return self.config

    def reset(self) -> None:
        """Clear the log, statistics, windows, arrival counts and prefix cache.

        The settings return to those the server started with; files and
        batches stay.
        """
        self.log.clear()
        self._arrivals.clear()
        self.limiter.clear()
        self.prefix_cache.clear()
        self._apply(self.initial_config)

    def _apply(self, config: SimulatorConfig) -> None:
        old = self.config
        self.config = config
        self.limiter.configure(config)
        self.batches.config = config
        is_new_text = (old.seed, old.default_chars) != (
            config.seed,
            config.default_chars,
        )
        if is_new_text:
            self.generator = ContentGenerator(config.seed, config.default_chars)

    def count_arrival(self, body_hash: str) -> int:
        """Count one more arrival of this body and return its number, from 1."""
        arrival = self._arrivals.get(body_hash, 0) + 1
        self._arrivals[body_hash] = arrival
        return arrival

    def plan(self, markers: list[Marker], body_hash: str, arrival: int) -> Plan:
        """Return the fault plan for one arrival: markers, else the random rates."""
        if markers:
            return plan_from_markers(markers, arrival)
        config = self.config
        if not config.fault_rates and config.pad_rate == 0:
            return NO_FAULT
        draws = draw_uniforms(config.seed, body_hash, arrival)
        return plan_from_rates(config.fault_rates, config.pad_rate, draws[0], draws[1])

    def first_byte_delay(self, body_hash: str, arrival: int) -> float:
        """Return the seconds before the first byte, lognormal around latency_ms."""
        config = self.config
        if config.latency_ms <= 0:
            return 0.0
        mean = config.latency_ms / 1000 * config.time_scale
        sigma = config.latency_sigma
        if sigma == 0:
            return mean
        _, _, u1, u2 = draw_uniforms(config.seed, body_hash, arrival)
        normal = math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
        # This mu makes the distribution's mean equal to `mean`.
        mu = math.log(mean) - sigma * sigma / 2
        return math.exp(mu + sigma * normal)

    def token_delay(self, tokens: int) -> float:
        """Return the seconds it takes to generate `tokens` output tokens."""
        config = self.config
        return config.token_ms / 1000 * config.time_scale * tokens

    def window_tokens(self, request: ChatRequest) -> int:
        """Return the tokens a request counts toward the tokens-per-minute cap."""
        if request.max_tokens is not None:
            return request.prompt_tokens + request.max_tokens
        text = self.generator.generate(request.model, request.prompt)
        return request.prompt_tokens + text.content_tokens + text.reasoning_tokens

    def complete(self, request: ChatRequest, fault: str | None) -> Completion:
        """Complete `request`, applying a content fault and the prefix cache."""
        text = self.generator.generate(request.model, request.prompt)
        cached = self.prefix_cache.lookup(request.prompt, request.prompt_tokens)
        content_fault = fault if fault in CONTENT_FAULTS else None
        return build_completion(request, text, content_fault, cached)

    def record(
        self,
        entry: dict[str, Any],
        status: int | None,
        *,
        error: str | None = None,
        fault: str | None = None,
        completion: Completion | None = None,
        is_admitted: bool = False,
    ) -> None:
        """Fill in the outcome of `entry` and add it to the log."""
        entry["status"] = status
        entry["error"] = error
        entry["fault"] = fault
        if completion is not None:
            entry["prompt_tokens"] = completion.prompt_tokens
            entry["completion_tokens"] = completion.completion_tokens
            entry["reasoning_tokens"] = completion.reasoning_tokens
            entry["cached_tokens"] = completion.cached_tokens
        if error is not None:
            logger.debug(
                "%s request %s got %s (%s, fault %s)",
                entry["source"],
                entry["custom_id"] or entry["body_hash"],
                status,
                error,
                fault,
            )
        self.log.add(entry, is_admitted=is_admitted)

    def stats(self) -> dict[str, Any]:
        """Return the request statistics and the batches by status."""
        stats = self.log.stats(self.limiter.in_flight)
        stats["batches"] = self.batches.count_by_status()
        return stats

    def serve_line(
        self, batch: Batch, custom_id: str, body: dict[str, Any], is_failed: bool
    ) -> LineResult:
        """Serve one batch line as the chat endpoint would, minus transport faults."""
        body_hash = hash_body(orjson.dumps(body))
        entry = new_entry("batch", custom_id, body_hash, batch.id)
        request_id = new_id("req_")
        if is_failed:
            self.record(entry, 500, error="batch_failed_line")
            return _failed_line(custom_id, request_id, 500, fault_error_body("500"))
        try:
            request = parse_chat_request(body, self.config)
            markers = parse_markers(request.prompt)
        except InvalidRequest as invalid:
            self.record(entry, invalid.status, error=invalid.kind)
            return _failed_line(custom_id, request_id, invalid.status, invalid.body())
        except MarkerError as invalid:
            self.record(entry, 400, error="invalid_request")
            message = error_body(str(invalid), "invalid_request_error", "messages")
            return _failed_line(custom_id, request_id, 400, message)

        entry["model"] = request.model
        entry["stream"] = request.stream
        plan = self.plan(markers, body_hash, self.count_arrival(body_hash))
        if plan.fault in STATUS_FAULTS:
            status = int(plan.fault)
            self.record(entry, status, error="fault", fault=plan.fault)
            body = fault_error_body(plan.fault)
            return _failed_line(custom_id, request_id, status, body)

        fault = plan.fault if plan.fault in CONTENT_FAULTS else None
        completion = self.complete(request, fault)
        self.prefix_cache.store(request.prompt)
        self.record(entry, 200, fault=fault, completion=completion)

        response = completion_body(
            completion, request.model, new_id("chatcmpl-"), int(time.time())
        )
        line = {
            "id": new_id("batch_req_"),
            "custom_id": custom_id,
            "response": {
                "status_code": 200,
                "request_id": request_id,
                "body": response,
            },
            "error": None,
        }
        return LineResult(
            line,
            True,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.reasoning_tokens,
            completion.cached_tokens,
        )


def _failed_line(
    custom_id: str, request_id: str, status: int, body: dict[str, Any]
) -> LineResult:
    error = body["error"]
    line = {
        "id": new_id("batch_req_"),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": {"code": error["code"] or error["type"], "message": error["message"]},
    }
    return LineResult(line, False)
