"""Chat completion bodies: request checks, completions with usage, response shapes.

The HTTP handler and the batch processor share this module, so a batch line
is checked and completed exactly like a request sent on its own.
"""

import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from batchkit.simulate.config import SimulatorConfig
from batchkit.simulate.content import GeneratedText, is_reasoner
from batchkit.simulate.tokens import (
    TOKENS_PER_MESSAGE,
    count_tokens,
    truncate_to_tokens,
)

ROLES = ("system", "user", "assistant", "tool", "developer")
CONTENT_FAULTS = ("length", "content_filter", "empty")
SYSTEM_FINGERPRINT = "fp_simulator"

_JSON_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


class InvalidRequest(Exception):
    """A request the simulator rejects; its fields form OpenAI's error object."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        kind: str = "invalid_request",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.kind = kind

    def body(self) -> dict[str, Any]:
        """Return the error as OpenAI's `{"error": {...}}` object."""
        return error_body(self.message, "invalid_request_error", self.param, self.code)


@dataclass(slots=True)
class ChatRequest:
    """The parts of a chat completion request the simulator uses."""

    model: str
    prompt: str
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool


@dataclass(slots=True)
class Completion:
    """One completion as sent: content, reasoning, finish_reason and usage."""

    content: str | None
    reasoning: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Return OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def new_id(prefix: str) -> str:
    """Return a fresh random id such as `chatcmpl-…` or `req_…`."""
    return prefix + secrets.token_hex(12)


def parse_chat_request(
    raw: bytes | dict[str, Any], config: SimulatorConfig
) -> ChatRequest:
    """Check a chat completion body and return its parts; raise InvalidRequest."""
    body = _load_object(raw)
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", model, str)
    if config.check_model and model not in config.models:
        raise InvalidRequest(
            f"The model `{model}` does not exist; available models: "
            f"{', '.join(config.models)}.",
            "model",
            "model_not_found",
            status=404,
        )
    prompt, prompt_tokens = _read_messages(body, model)
    max_tokens = _read_max_tokens(body, config)
    _check_sampling(body)
    stream, include_usage = _read_stream(body)
    _check_context(prompt_tokens, max_tokens, config)
    return ChatRequest(model, prompt, prompt_tokens, max_tokens, stream, include_usage)


def _load_object(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise InvalidRequest(
            "The request body is not a JSON object. Send the parameters as JSON "
            "with Content-Type: application/json."
        )
    return body


def _read_messages(body: dict[str, Any], model: str) -> tuple[str, int]:
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", messages, list)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Send at least one message.",
            "messages",
            "empty_array",
        )
    parts: list[str] = []
    tokens = 0
    for index, message in enumerate(messages):
        text = _read_message(message, index, model)
        parts.append(text)
        tokens += count_tokens(text) + TOKENS_PER_MESSAGE
    return "\n".join(parts), tokens


def _read_message(message: object, index: int, model: str) -> str:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise _wrong_type(where, message, dict)
    role = message.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if role not in ROLES:
        raise InvalidRequest(
            f"Invalid value for '{where}.role': {role!r}. Supported values are: "
            f"{', '.join(map(repr, ROLES))}.",
            f"{where}.role",
            "invalid_value",
        )

    if "reasoning_content" in message and is_reasoner(model):
        raise InvalidRequest(
            f"'{where}.reasoning_content' must not be sent back to the model; "
            "drop it from the assistant message.",
            f"{where}.reasoning_content",
            "invalid_value",
        )

    content = message.get("content")
    if isinstance(content, str):
        return f"{role}: {content}"
    if isinstance(content, list):
        return f"{role}: " + "".join(_read_part(part, where) for part in content)
    if content is None and role == "assistant":
        return f"{role}: "
    if content is None:
        raise _missing(f"{where}.content")
    raise _wrong_type(f"{where}.content", content, str)


def _read_part(part: object, where: str) -> str:
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    if isinstance(part, dict) and "type" in part:
        return ""
    raise InvalidRequest(
        f"Invalid content part in '{where}.content': expected an object with "
        "'type' and, for text, 'text'.",
        f"{where}.content",
        "invalid_type",
    )


def _read_max_tokens(body: dict[str, Any], config: SimulatorConfig) -> int | None:
    max_tokens = None
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(name, value, int)
        if not 1 <= value <= config.max_output_tokens:
            raise InvalidRequest(
                f"Invalid '{name}': {value}. The valid range is 1 to "
                f"{config.max_output_tokens}.",
                name,
                "invalid_value",
            )
        max_tokens = value if max_tokens is None else min(max_tokens, value)
    return max_tokens


def _check_sampling(body: dict[str, Any]) -> None:
    for name, highest in (("temperature", 2.0), ("top_p", 1.0)):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _wrong_type(name, value, float)
        if not 0 <= value <= highest:
            raise InvalidRequest(
                f"Invalid '{name}': {value}. Expected a value from 0 to {highest:g}.",
                name,
                "invalid_value",
            )
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(
            f"Invalid 'n': {n!r}. The simulator returns one choice; send n = 1.",
            "n",
            "invalid_value",
        )


def _read_stream(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _wrong_type("stream", stream, bool)
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", options, dict)
    if not stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.",
            "stream_options",
            "invalid_value",
        )
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _wrong_type("stream_options.include_usage", include_usage, bool)
    return stream, include_usage


def _check_context(
    prompt_tokens: int, max_tokens: int | None, config: SimulatorConfig
) -> None:
    limit = config.context_tokens
    if prompt_tokens > limit:
        raise InvalidRequest(
            f"This model's maximum context length is {limit} tokens, but the "
            f"messages have {prompt_tokens} tokens. Shorten the messages.",
            "messages",
            "context_length_exceeded",
            kind="context_length",
        )
    if max_tokens is not None and prompt_tokens + max_tokens > limit:
        raise InvalidRequest(
            f"This model's maximum context length is {limit} tokens, but "
            f"{prompt_tokens + max_tokens} were requested ({prompt_tokens} in the "
            f"messages, {max_tokens} in the completion). Lower max_tokens or "
            "shorten the messages.",
            "max_tokens",
            "context_length_exceeded",
            kind="context_length",
        )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def _wrong_type(param: str, value: object, expected: type) -> InvalidRequest:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidRequest(
        f"Invalid type for '{param}': expected {_JSON_TYPES[expected]}, "
        f"but got {got} instead.",
        param,
        "invalid_type",
    )


def build_completion(
    request: ChatRequest, text: GeneratedText, fault: str | None, cached_tokens: int
) -> Completion:
    """Build the completion, applying max_tokens and a content fault.

    The content faults are length, content_filter and empty.
    """
    reasoning, reasoning_tokens = text.reasoning, text.reasoning_tokens
    if fault == "content_filter":
        content: str | None = None
        content_tokens = 0
        finish_reason = "content_filter"
    elif fault == "empty":
        content, content_tokens, finish_reason = "", 0, "stop"
    else:
        content, content_tokens = text.content, text.content_tokens
        finish_reason = "stop"
    budget = request.max_tokens
    if fault == "length":
        budget = budget if budget is not None else max(text.content_tokens // 2, 1)
        content = _lengthen(text.content, budget)
    if budget is not None and content is not None:
        content, reasoning, finish = _cut_to_budget(content, reasoning, budget)
        content_tokens = count_tokens(content)
        reasoning_tokens = count_tokens(reasoning) if reasoning is not None else 0
        finish_reason = finish or finish_reason
    return Completion(
        content=content,
        reasoning=reasoning,
        finish_reason=finish_reason,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=content_tokens + reasoning_tokens,
        reasoning_tokens=reasoning_tokens,
        cached_tokens=cached_tokens,
    )


def _lengthen(content: str, budget: int) -> str:
    # A `length` fault needs content longer than the budget, to cut it there.
    text = content
    while count_tokens(text) <= budget:
        text = text + "\n\n" + content
    return text


def _cut_to_budget(
    content: str, reasoning: str | None, budget: int
) -> tuple[str, str | None, str | None]:
    # Reasoning tokens count toward max_tokens first, as with DeepSeek's reasoner.
    reasoning_tokens = count_tokens(reasoning) if reasoning is not None else 0
    if reasoning is not None and reasoning_tokens >= budget:
        return "", truncate_to_tokens(reasoning, budget), "length"
    room = budget - reasoning_tokens
    if count_tokens(content) <= room:
        return content, reasoning, None
    return truncate_to_tokens(content, room), reasoning, "length"


def usage_body(completion: Completion) -> dict[str, Any]:
    """Return the usage object with both OpenAI's and DeepSeek's cache fields."""
    prompt = completion.prompt_tokens
    cached = completion.cached_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": prompt + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": completion.reasoning_tokens},
        "prompt_cache_hit_tokens": cached,
        "prompt_cache_miss_tokens": prompt - cached,
    }


def completion_body(
    completion: Completion, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """Return a `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.content}
    if completion.reasoning is not None:
        message["reasoning_content"] = completion.reasoning
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": usage_body(completion),
    }


STATUS_FAULTS = ("429", "500", "502", "503")

_FAULT_ERRORS = {
    "429": (
        "The service is overloaded and rate-limited this request (simulated "
        "fault 429). Retry after a pause.",
        "requests",
        "rate_limit_exceeded",
    ),
    "500": (
        "The server failed while processing the request (simulated fault 500). "
        "Retry the request.",
        "server_error",
        None,
    ),
    "502": (
        "The upstream server sent an invalid response (simulated fault 502). "
        "Retry the request.",
        "server_error",
        "bad_gateway",
    ),
    "503": (
        "The service is temporarily unavailable (simulated fault 503). "
        "Retry after a pause.",
        "server_error",
        "service_unavailable",
    ),
}


def fault_error_body(fault: str) -> dict[str, Any]:
    """Return the error object of a status fault (429, 500, 502 or 503)."""
    message, kind, code = _FAULT_ERRORS[fault]
    return error_body(message, kind, None, code)
