"""The OpenAI chat completions wire format: request bodies, responses and usage.

DeepSeek and OpenAI report usage differently. DeepSeek sends
`prompt_cache_hit_tokens` and `prompt_cache_miss_tokens`, OpenAI sends
`prompt_tokens_details.cached_tokens`; both send
`completion_tokens_details.reasoning_tokens`, which `completion_tokens`
already includes.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from batchkit.providers.errors import InvalidResponseError

_BODY_KEY = ',"body":'


def request_body(line: str) -> bytes:
    """Return the `body` of an OpenAI batch line as the bytes to send.

    Lines written by prepare end with the body, so the stored bytes are sent
    unchanged; any other layout is parsed and the body serialized again.
    """
    start = line.find(_BODY_KEY)
    if start != -1 and line.endswith("}"):
        body = line[start + len(_BODY_KEY) : -1]
        if body.startswith("{") and body.endswith("}"):
            return body.encode()
    return orjson.dumps(orjson.loads(line)["body"])


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response; completion_tokens includes reasoning."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_hit_tokens: int | None = None
    cache_miss_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        """Return prompt plus completion tokens (0 for what is missing)."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(frozen=True, slots=True)
class Completion:
    """The parts of a chat completion that the response log keeps."""

    content: str | None
    reasoning_content: str | None
    finish_reason: str | None
    model: str | None
    usage: Usage


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def parse_usage(usage: Any) -> Usage:
    """Read the `usage` object of a response, whichever provider sent it."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = _integer(usage.get("prompt_tokens"))
    completion = _integer(usage.get("completion_tokens"))
    completion_details = usage.get("completion_tokens_details") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    reasoning = _integer(completion_details.get("reasoning_tokens"))
    hit = _integer(usage.get("prompt_cache_hit_tokens"))
    miss = _integer(usage.get("prompt_cache_miss_tokens"))
    if hit is None:
        hit = _integer(prompt_details.get("cached_tokens"))
    if miss is None and prompt is not None:
        miss = prompt - (hit or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cache_hit_tokens=hit,
        cache_miss_tokens=miss,
    )


def strip_padding(body: bytes) -> bytes:
    """Remove the blank lines and `: keep-alive` comment lines before the JSON."""
    text = body.lstrip()
    while text.startswith(b":"):
        end = text.find(b"\n")
        if end == -1:
            return b""
        text = text[end + 1 :].lstrip()
    return text


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    stripped = strip_padding(body)
    if not stripped:
        raise InvalidResponseError(
            f"HTTP 200 with no JSON in {len(body)} bytes of body (padding only)",
            http_status=200,
        )
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError as error:
        raise InvalidResponseError(
            f"HTTP 200 with a body that is not valid JSON ({error}; "
            f"{len(body)} bytes, probably cut short)",
            http_status=200,
        ) from error


def parse_completion(body: bytes) -> Completion:
    """Parse a 200 response body; raise InvalidResponseError if it is no completion."""
    data = _load(body)
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as error:
        raise InvalidResponseError(
            "HTTP 200 with JSON that has no choices[0].message",
            http_status=200,
        ) from error
    if not isinstance(message, dict):
        raise InvalidResponseError(
            "HTTP 200 with a choices[0].message that is not an object",
            http_status=200,
        )
    return Completion(
        content=message.get("content"),
        reasoning_content=message.get("reasoning_content"),
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
        usage=parse_usage(data.get("usage")),
    )
