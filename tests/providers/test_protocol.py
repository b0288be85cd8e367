"""Request bodies, padded responses and usage in the DeepSeek and OpenAI shapes."""

import orjson
import pytest

from batchkit.providers.errors import InvalidResponseError
from batchkit.providers.protocol import (
    parse_completion,
    parse_usage,
    request_body,
    strip_padding,
)

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "deepseek-reasoner",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "# Title\n文档 🙂",
                "reasoning_content": "Let me think.",
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "prompt_cache_hit_tokens": 60,
        "prompt_cache_miss_tokens": 40,
        "completion_tokens_details": {"reasoning_tokens": 20},
    },
}
BODY = orjson.dumps(COMPLETION)


def test_request_body_is_the_stored_bytes() -> None:
    body = '{"model":"m","messages":[{"role":"user","content":"hi \\u2028 文"}]}'
    line = (
        '{"custom_id":"doc_en:1","method":"POST","url":"/v1/chat/completions",'
        f'"body":{body}}}'
    )
    assert request_body(line) == body.encode()


def test_request_body_other_key_order() -> None:
    line = orjson.dumps(
        {"body": {"model": "m", "messages": []}, "custom_id": "a", "url": "/v1/x"}
    ).decode()
    assert orjson.loads(request_body(line)) == {"model": "m", "messages": []}


def test_parse_completion_keeps_reasoning_apart() -> None:
    completion = parse_completion(BODY)
    assert completion.content == "# Title\n文档 🙂"
    assert completion.reasoning_content == "Let me think."
    assert completion.finish_reason == "stop"
    assert completion.model == "deepseek-reasoner"


def test_parse_usage_deepseek_shape() -> None:
    usage = parse_completion(BODY).usage
    assert usage.prompt_tokens == 100
    assert usage.completion_tokens == 50
    assert usage.reasoning_tokens == 20
    assert usage.cache_hit_tokens == 60
    assert usage.cache_miss_tokens == 40


def test_parse_usage_openai_shape() -> None:
    usage = parse_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    )
    assert usage.cache_hit_tokens == 64
    assert usage.cache_miss_tokens == 36
    assert usage.reasoning_tokens == 0


def test_parse_usage_missing() -> None:
    usage = parse_usage(None)
    assert usage.prompt_tokens is None
    assert usage.total_tokens == 0


@pytest.mark.parametrize(
    "padding",
    [b"\n\n\n", b"\r\n \r\n", b": keep-alive\n\n: keep-alive\n\n", b"\n: keep-alive\n"],
)
def test_parse_completion_after_padding(padding: bytes) -> None:
    completion = parse_completion(padding + BODY)
    assert completion.content == "# Title\n文档 🙂"


def test_strip_padding_keeps_the_json() -> None:
    assert strip_padding(b"\n\n: keep-alive\n\n{}") == b"{}"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n\n\n\n",
        b": keep-alive\n\n: keep-alive\n\n",
        BODY[: len(BODY) // 2],
        b"<html>oops</html>",
        b'{"object": "error"}',
        b'{"choices": []}',
    ],
)
def test_parse_completion_invalid(body: bytes) -> None:
    with pytest.raises(InvalidResponseError) as caught:
        parse_completion(body)
    assert caught.value.error_type == "invalid_json"
    assert caught.value.is_retryable


def test_parse_completion_length_is_ok() -> None:
    data = dict(COMPLETION)
    data["choices"] = [{"message": {"content": ""}, "finish_reason": "length"}]
    completion = parse_completion(orjson.dumps(data))
    assert completion.finish_reason == "length"
    assert completion.content == ""
