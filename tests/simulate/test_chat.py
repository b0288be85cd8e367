"""Chat completions through the official OpenAI SDK, and the request checks."""

import httpx
import openai
import pytest

from batchkit.load.validate import count_headings, language_share
from tests.simulate.helpers import chat_body, openai_client

DOC_PROMPT = (
    "Write a product requirements document in Markdown. "
    "Length: 2,000–4,000 characters. Write in English."
)


def test_models_list(simulator):
    with openai_client(simulator) as client:
        models = [model.id for model in client.models.list().data]
    assert "deepseek-chat" in models
    assert "deepseek-reasoner" in models


def test_completion_shape_and_usage(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": DOC_PROMPT}],
            max_tokens=4000,
        )
    choice = response.choices[0]
    content = choice.message.content
    usage = response.usage
    assert response.object == "chat.completion"
    assert choice.finish_reason == "stop"
    assert 2000 <= len(content) <= 4000
    assert content.startswith("# ")
    assert "\n## " in content
    assert language_share(content, "en") > 0.95
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.model_extra["prompt_cache_hit_tokens"] == 0
    assert usage.model_extra["prompt_cache_miss_tokens"] == usage.prompt_tokens


def test_completion_deterministic_for_body(simulator):
    with openai_client(simulator) as client:
        answers = [
            client.chat.completions.create(**chat_body(DOC_PROMPT))
            .choices[0]
            .message.content
            for _ in range(2)
        ]
        other = client.chat.completions.create(**chat_body(DOC_PROMPT + " Now."))
    assert answers[0] == answers[1]
    assert other.choices[0].message.content != answers[0]


def test_seed_changes_content(simulator_factory):
    contents = []
    for seed in (1, 2):
        server = simulator_factory(seed=seed)
        with openai_client(server) as client:
            response = client.chat.completions.create(**chat_body(DOC_PROMPT))
        contents.append(response.choices[0].message.content)
    assert contents[0] != contents[1]


def test_chinese_translation_mirrors_headings(simulator):
    source = (
        "# Title\n\nIntro.\n\n## One\n\nText.\n\n## Two\n\nText.\n\n### Two.a\n\nEnd."
    )
    prompt = (
        "Translate the Markdown document at the end of this message into "
        "Simplified Chinese. Length: 300–900 characters.\n\n" + source
    )
    with openai_client(simulator) as client:
        response = client.chat.completions.create(**chat_body(prompt))
    content = response.choices[0].message.content
    levels = [line.split(" ")[0] for line in content.splitlines() if line[:1] == "#"]
    assert levels == ["#", "##", "##", "###"]
    assert count_headings(content) == count_headings(source)
    assert language_share(content, "zh") > 0.95
    assert 300 <= len(content) <= 900


def test_reasoner_returns_reasoning(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(
            model="deepseek-reasoner",
            messages=[{"role": "user", "content": DOC_PROMPT}],
        )
    message = response.choices[0].message
    usage = response.usage
    reasoning_tokens = usage.completion_tokens_details.reasoning_tokens
    assert message.model_extra["reasoning_content"]
    assert 0 < reasoning_tokens < usage.completion_tokens


def test_max_tokens_cuts_with_length(simulator):
    with openai_client(simulator) as client:
        response = client.chat.completions.create(
            **chat_body(DOC_PROMPT, max_tokens=50)
        )
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens <= 50
    assert len(response.choices[0].message.content) < 400


def test_reasoner_max_tokens_counts_reasoning(simulator):
    body = chat_body(DOC_PROMPT, max_tokens=100, model="deepseek-reasoner")
    with openai_client(simulator) as client:
        response = client.chat.completions.create(**body)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens <= 100


def test_prefix_cache_reports_hits(simulator):
    shared = "Background. " * 200
    with openai_client(simulator) as client:
        first = client.chat.completions.create(**chat_body(shared + "Question one?"))
        second = client.chat.completions.create(**chat_body(shared + "Question two?"))
    hit = second.usage.prompt_tokens_details.cached_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert hit > 0
    assert hit % 64 == 0
    assert second.usage.model_extra["prompt_cache_hit_tokens"] == hit
    miss = second.usage.model_extra["prompt_cache_miss_tokens"]
    assert miss == second.usage.prompt_tokens - hit


def test_stream_chunks_and_usage(simulator):
    with openai_client(simulator) as client:
        stream = client.chat.completions.create(
            **chat_body(DOC_PROMPT),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        whole = client.chat.completions.create(**chat_body(DOC_PROMPT))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert len(chunks) > 10
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == whole.choices[0].message.content
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stream_ends_with_done(simulator):
    body = chat_body("Say hi.", stream=True)
    headers = {"Authorization": f"Bearer {simulator.api_key}"}
    with httpx.Client(trust_env=False) as http:
        response = http.post(
            f"{simulator.base_url}/chat/completions", json=body, headers=headers
        )
    events = [e for e in response.text.split("\n\n") if e]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events)
    assert '"usage"' not in response.text


def test_stream_reasoner_sends_reasoning_first(simulator):
    with openai_client(simulator) as client:
        chunks = list(
            client.chat.completions.create(
                model="deepseek-reasoner",
                messages=[{"role": "user", "content": "Say hi."}],
                stream=True,
            )
        )
    deltas = [c.choices[0].delta for c in chunks]
    kinds = [
        "reasoning" if (d.model_extra or {}).get("reasoning_content") else "content"
        for d in deltas
        if d.content or (d.model_extra or {}).get("reasoning_content")
    ]
    assert kinds[0] == "reasoning"
    assert kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")


def test_missing_key_is_401(simulator):
    with (
        openai.OpenAI(
            base_url=simulator.base_url, api_key="sk-wrong", max_retries=0
        ) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(**chat_body("hi"))
    error = caught.value.body
    assert caught.value.status_code == 401
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    assert simulator.stats()["by_error"] == {"unauthorized": 1}


def test_files_need_key_too(simulator):
    with httpx.Client(trust_env=False) as http:
        response = http.get(f"{simulator.base_url}/files")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "deepseek-chat"}, "messages", "missing_required_parameter"),
        (
            {"messages": [{"role": "user", "content": "hi"}]},
            "model",
            "missing_required_parameter",
        ),
        (chat_body("hi", max_tokens="100"), "max_tokens", "invalid_type"),
        (chat_body("hi", max_tokens=1.5), "max_tokens", "invalid_type"),
        (chat_body("hi", max_tokens=0), "max_tokens", "invalid_value"),
        (chat_body("hi", temperature=3), "temperature", "invalid_value"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role", None),
        (
            {"model": "m", "messages": [{"role": "user"}]},
            "messages[0].content",
            "missing_required_parameter",
        ),
        (
            chat_body("hi", stream_options={"include_usage": True}),
            "stream_options",
            None,
        ),
        (chat_body("hi", n=2), "n", "invalid_value"),
        (chat_body("[[sim:explode]]"), "messages", None),
    ],
)
def test_bad_body_is_400_naming_field(simulator, body, param, code):
    # Raw HTTP, because the SDK itself rejects a body without model or messages.
    headers = {"Authorization": f"Bearer {simulator.api_key}"}
    with httpx.Client(trust_env=False) as http:
        response = http.post(
            f"{simulator.base_url}/chat/completions", json=body, headers=headers
        )
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["param"] == param
    assert code is None or error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert param in error["message"] or param == "messages"


def test_bad_max_tokens_through_sdk(simulator):
    with (
        openai_client(simulator) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.chat.completions.create(**chat_body("hi", max_tokens="many"))
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "max_tokens"
    assert "max_tokens" in caught.value.body["message"]
    assert simulator.stats()["by_error"] == {"invalid_request": 1}


def test_invalid_json_is_400(simulator):
    headers = {"Authorization": f"Bearer {simulator.api_key}"}
    with httpx.Client(trust_env=False) as http:
        response = http.post(
            f"{simulator.base_url}/chat/completions", content=b"{nope", headers=headers
        )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_reasoning_content_sent_back_is_400(simulator):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning_content": "thought"},
        {"role": "user", "content": "again"},
    ]
    with (
        openai_client(simulator) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.chat.completions.create(model="deepseek-reasoner", messages=messages)
    assert caught.value.body["param"] == "messages[1].reasoning_content"


def test_prompt_over_context_is_400(simulator_factory):
    server = simulator_factory(context_tokens=100)
    with (
        openai_client(server) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.chat.completions.create(**chat_body("word " * 200))
    assert caught.value.body["code"] == "context_length_exceeded"
    assert caught.value.body["param"] == "messages"
    assert server.stats()["by_error"] == {"context_length": 1}


def test_unknown_model_is_404_when_checked(simulator_factory):
    server = simulator_factory(check_model=True)
    with openai_client(server) as client, pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(**chat_body("hi", model="gpt-nope"))
    assert caught.value.body["code"] == "model_not_found"


def test_log_records_request_id_header(simulator):
    with openai_client(simulator) as client:
        client.chat.completions.create(
            **chat_body("hi"), extra_headers={"X-Client-Request-Id": "item-7"}
        )
        client.chat.completions.create(**chat_body("hello"))
    first, second = simulator.log()
    assert first["custom_id"] == "item-7"
    assert second["custom_id"] is None
    assert len(second["body_hash"]) == 16
    assert first["status"] == 200
    assert first["completion_tokens"] > 0
