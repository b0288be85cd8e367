"""POST /v1/chat/completions: caps, faults, latency, padding and streaming.

Transport faults happen on the real socket. `drop` closes it before any
status line. `truncate` sends the headers with the full Content-Length (or
starts a stream) and closes after half the body. `hang` sends nothing until
the hang time ends and then closes. Padding sends blank lines (or `: keep-alive` SSE
comments when streaming) before the body, as DeepSeek does under load.
"""

import asyncio
import math
import time
from typing import Any

import orjson
from aiohttp import web

from batchkit.simulate.completion import (
    STATUS_FAULTS,
    ChatRequest,
    Completion,
    InvalidRequest,
    completion_body,
    fault_error_body,
    new_id,
    parse_chat_request,
    usage_body,
)
from batchkit.simulate.faults import Marker, MarkerError, Plan, parse_markers
from batchkit.simulate.http_common import (
    STATE,
    error_response,
    json_response,
    rate_limit_response,
    unauthorized_response,
)
from batchkit.simulate.state import SimulatorState, hash_body, new_entry
from batchkit.simulate.tokens import LATIN_CHARS_PER_TOKEN, TOKENS_PER_CJK_CHAR

# Connection checks while hanging or padding happen at least this often.
POLL_SECONDS = 0.05
# Stream delays shorter than this add up before one sleep, to save wakeups.
MIN_SLEEP_SECONDS = 0.002
REQUEST_ID_HEADERS = ("X-Request-Id", "X-Client-Request-Id")
BAD_GATEWAY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center></body></html>\n"
)
SSE_DONE = b"data: [DONE]\n\n"
SSE_KEEP_ALIVE = b": keep-alive\n\n"


async def handle_chat(request: web.Request) -> web.StreamResponse:
    """Serve one chat completion request."""
    state = request.app[STATE]
    raw = await request.read()
    body_hash = hash_body(raw)
    custom_id = None
    for header in REQUEST_ID_HEADERS:
        custom_id = custom_id or request.headers.get(header)
    entry = new_entry("http", custom_id, body_hash)
    unauthorized = unauthorized_response(request)
    if unauthorized is not None:
        state.record(entry, 401, error="unauthorized")
        return unauthorized
    try:
        chat = parse_chat_request(raw, state.config)
        markers = parse_markers(chat.prompt)
    except InvalidRequest as invalid:
        state.record(entry, invalid.status, error=invalid.kind)
        return json_response(invalid.body(), invalid.status)
    except MarkerError as invalid:
        state.record(entry, 400, error="invalid_request")
        return error_response(400, str(invalid), param="messages")
    entry["model"] = chat.model
    entry["stream"] = chat.stream
    return await Exchange(request, state, chat, entry, markers, body_hash).run()


class Exchange:
    """One admitted-or-waiting chat request and its response."""

    def __init__(
        self,
        request: web.Request,
        state: SimulatorState,
        chat: ChatRequest,
        entry: dict[str, Any],
        markers: list[Marker],
        body_hash: str,
    ) -> None:
        self.request = request
        self.state = state
        self.chat = chat
        self.entry = entry
        self.markers = markers
        self.body_hash = body_hash
        self.tokens = state.window_tokens(chat)
        self.headers = {"x-request-id": new_id("req_")}
        self.response: web.StreamResponse | None = None

    async def run(self) -> web.StreamResponse:
        """Pass the rate caps (or wait padded), then serve the request."""
        state = self.state
        limiter = state.limiter
        rejection = limiter.check(self.tokens)
        if rejection is not None:
            error = rejection.cap
            if error != "concurrency":
                error = f"rate_limit_{error}"
            if state.config.over_cap == "reject" or not rejection.can_wait:
                state.record(self.entry, 429, error=error)
                return rate_limit_response(rejection, state.config.retry_after)
            if not await self._pad_until_admitted():
                state.record(self.entry, None, error=error)
                return self.response or web.Response()

        limiter.admit(self.tokens)
        state.log.max_in_flight = max(state.log.max_in_flight, limiter.in_flight)
        if limiter.has_caps:
            self.headers.update(limiter.headers(time.monotonic(), self.tokens))
        try:
            return await self._serve()
        finally:
            limiter.release()

    async def _serve(self) -> web.StreamResponse:
        state = self.state
        arrival = state.count_arrival(self.body_hash)
        plan = state.plan(self.markers, self.body_hash, arrival)
        delay = state.first_byte_delay(self.body_hash, arrival)
        fault = plan.fault
        if fault in STATUS_FAULTS:
            return await self._fail(fault, delay)
        if fault == "drop":
            state.record(self.entry, None, error="fault", fault=fault, is_admitted=True)
            await self._sleep(delay)
            return self._drop()
        if fault == "hang":
            return await self._hang(plan)
        completion = state.complete(self.chat, fault)
        self.entry["padded"] = plan.is_padded or self.response is not None
        state.record(
            self.entry, 200, fault=fault, completion=completion, is_admitted=True
        )
        if plan.is_padded and not await self._pad(plan):
            return self.response or web.Response()
        is_cut = fault == "truncate"
        if self.chat.stream:
            response = await self._stream(completion, delay, is_cut)
        else:
            await self._sleep(delay + state.token_delay(completion.completion_tokens))
            response = await self._send(completion, is_cut)
        if not is_cut:
            state.prefix_cache.store(self.chat.prompt)
        return response

    async def _fail(self, fault: str, delay: float) -> web.StreamResponse:
        config = self.state.config
        if fault == "429":
            self.state.limiter.refund(self.tokens)
        self.state.record(
            self.entry,
            int(fault),
            error="fault",
            fault=fault,
            is_admitted=fault != "429",
        )
        await self._sleep(delay)
        if self.response is not None:
            # Padding already sent a 200 status line, so the error cannot follow.
            return self._drop()
        headers = dict(self.headers)
        if fault == "429" and config.retry_after:
            headers["Retry-After"] = "1"
        if fault == "502":
            return web.Response(
                body=BAD_GATEWAY_PAGE,
                status=502,
                content_type="text/html",
                headers=headers,
            )
        return json_response(fault_error_body(fault), int(fault), headers)

    def _drop(self) -> web.StreamResponse:
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        return self.response or web.Response()

    async def _hang(self, plan: Plan) -> web.StreamResponse:
        config = self.state.config
        self.state.record(
            self.entry, None, error="fault", fault="hang", is_admitted=True
        )
        seconds = (
            plan.hang_seconds if plan.hang_seconds is not None else config.hang_seconds
        )
        deadline = time.monotonic() + seconds * config.time_scale
        while time.monotonic() < deadline and self._is_connected():
            await asyncio.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        transport = self.request.transport
        if transport is not None:
            transport.close()
        return self.response or web.Response()

    async def _pad(self, plan: Plan) -> bool:
        # Returns False when the client went away (always so when padding forever).
        config = self.state.config
        seconds = plan.pad_seconds
        if seconds is None:
            seconds = math.inf if config.pad_forever else config.pad_seconds
        deadline = time.monotonic() + seconds * config.time_scale
        interval = config.pad_interval * config.time_scale
        await self._start()
        while time.monotonic() < deadline:
            if not await self._write_pad_line():
                return False
            await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0)))
        return True

    async def _pad_until_admitted(self) -> bool:
        # Returns False when the client went away before a cap had room.
        config = self.state.config
        self.entry["padded"] = True
        await self._start()
        while True:
            if not await self._write_pad_line():
                return False
            await asyncio.sleep(config.pad_interval * config.time_scale)
            if self.state.limiter.check(self.tokens) is None:
                return True

    async def _write_pad_line(self) -> bool:
        assert self.response is not None
        if not self._is_connected():
            return False
        try:
            await self.response.write(SSE_KEEP_ALIVE if self.chat.stream else b"\n")
        except ConnectionError:
            return False
        return True

    def _is_connected(self) -> bool:
        transport = self.request.transport
        return transport is not None and not transport.is_closing()

    async def _start(self, content_length: int | None = None) -> web.StreamResponse:
        if self.response is not None:
            return self.response
        response = web.StreamResponse(status=200, headers=self.headers)
        if self.chat.stream:
            response.content_type = "text/event-stream"
            response.headers["Cache-Control"] = "no-cache"
        else:
            response.content_type = "application/json"
        if content_length is not None:
            response.content_length = content_length
        await response.prepare(self.request)
        self.response = response
        return response

    async def _send(self, completion: Completion, is_cut: bool) -> web.StreamResponse:
        body = orjson.dumps(
            completion_body(
                completion, self.chat.model, new_id("chatcmpl-"), int(time.time())
            )
        )
        if self.response is None and not is_cut:
            return web.Response(
                body=body, content_type="application/json", headers=self.headers
            )
        response = await self._start(content_length=len(body))
        try:
            if is_cut:
                await response.write(body[: len(body) // 2])
                return self._close()
            await response.write(body)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    def _close(self) -> web.StreamResponse:
        # close() sends what is buffered first, unlike abort().
        transport = self.request.transport
        if transport is not None:
            transport.close()
        return self.response or web.Response()

    async def _stream(
        self, completion: Completion, delay: float, is_cut: bool
    ) -> web.StreamResponse:
        response = await self._start()
        events = build_stream_events(
            completion,
            self.chat,
            new_id("chatcmpl-"),
            int(time.time()),
            self.state.config.stream_chunk_tokens,
        )
        if is_cut:
            events = events[: max(len(events) // 2, 1)]
        debt = delay
        try:
            for event, tokens in events:
                debt += self.state.token_delay(tokens)
                if debt >= MIN_SLEEP_SECONDS:
                    await asyncio.sleep(debt)
                    debt = 0.0
                await response.write(event)
            if is_cut:
                return self._close()
            await response.write(SSE_DONE)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


def build_stream_events(
    completion: Completion,
    chat: ChatRequest,
    completion_id: str,
    created: int,
    chunk_tokens: int,
) -> list[tuple[bytes, int]]:
    """Return the SSE events of a streamed completion, each with its token count."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": chat.model,
        "system_fingerprint": "fp_simulator",
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**base, "choices": [choice]}
        if chat.include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    first: dict[str, Any] = {"role": "assistant", "content": ""}
    if completion.reasoning is not None:
        first = {"role": "assistant", "content": None, "reasoning_content": ""}
    events = [(event(first), 0)]
    for piece, tokens in split_pieces(completion.reasoning or "", chunk_tokens):
        events.append((event({"content": None, "reasoning_content": piece}), tokens))
    for piece, tokens in split_pieces(completion.content or "", chunk_tokens):
        events.append((event({"content": piece}), tokens))
    events.append((event({}, completion.finish_reason), 0))
    if chat.include_usage:
        usage_chunk = {**base, "choices": [], "usage": usage_body(completion)}
        events.append((b"data: " + orjson.dumps(usage_chunk) + b"\n\n", 0))
    return events


def split_pieces(text: str, chunk_tokens: int) -> list[tuple[str, int]]:
    """Split `text` into stream pieces of about `chunk_tokens` tokens each."""
    if not text:
        return []
    if text.isascii():
        size = chunk_tokens * LATIN_CHARS_PER_TOKEN
    else:
        size = max(int(chunk_tokens / TOKENS_PER_CJK_CHAR), 1)
    return [(text[i : i + size], chunk_tokens) for i in range(0, len(text), size)]
