"""Rendering items into OpenAI batch lines."""

import orjson
import pytest

from batchkit.job.model import MessageSpec, StageSpec, ValidationRules
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.render import StageRenderer, encode_line, hash_body


def _stage(*templates: str, **changes: object) -> StageSpec:
    fields: dict = {
        "name": "doc_en",
        "messages": tuple(
            MessageSpec(role="user", template=text, origin="inline.j2")
            for text in templates
        ),
        "model": "m",
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": None,
        "extra_body": {},
        "depends_on": None,
        "when": None,
        "max_attempts": 3,
        "validation": ValidationRules(),
    }
    fields.update(changes)
    return StageSpec(**fields)


@pytest.mark.parametrize(
    "value",
    [
        "{{ 7 * 7 }}",
        "{% for x in range(3) %}x{% endfor %}",
        "{# comment #}",
        "{{ item.secret }}",
        "{%- raw %}",
        "{{ ''.__class__ }}",
    ],
)
def test_template_syntax_in_value_is_text(value: str) -> None:
    renderer = StageRenderer(_stage("Name: {{ item.name }}"))

    request = renderer.render("k1", {"name": value}, None)

    body = orjson.loads(request.line)["body"]
    assert body["messages"][0]["content"] == f"Name: {value}"


def test_line_is_openai_batch_line() -> None:
    renderer = StageRenderer(_stage("Hi {{ item.name }}", extra_body={"seed": 3}))

    request = renderer.render("p1:t1", {"name": "Ann"}, None)

    line = orjson.loads(request.line)
    assert line == {
        "custom_id": "doc_en:p1:t1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "m",
            "max_tokens": 100,
            "temperature": 0.2,
            "seed": 3,
            "messages": [{"role": "user", "content": "Hi Ann"}],
        },
    }
    assert request.request_hash == hash_body(line["body"])
    assert request.line_bytes == len(request.line.encode()) + 1


def test_hash_ignores_key_order() -> None:
    assert hash_body({"a": 1, "b": [1, 2]}) == hash_body({"b": [1, 2], "a": 1})
    assert hash_body({"a": 1}) != hash_body({"a": 2})


@pytest.mark.parametrize(
    "text", ["a\u2028b", "a\u2029b", "a\x85b", "a\rb", "a\x1eb", "😀 中文"]
)
def test_encode_line_keeps_one_line(text: str) -> None:
    encoded = encode_line({"content": text})

    assert len(encoded.decode().splitlines()) == 1
    assert orjson.loads(encoded) == {"content": text}


def test_value_with_line_separator_survives() -> None:
    renderer = StageRenderer(_stage("{{ item.text }}"))

    request = renderer.render("k", {"text": "one\u2028two\u2029three"}, None)

    assert "\u2028" not in request.line
    assert "\\u2028" in request.line
    content = orjson.loads(request.line)["body"]["messages"][0]["content"]
    assert content == "one\u2028two\u2029three"


def test_missing_variable_names_template_item_variable() -> None:
    renderer = StageRenderer(_stage("{{ item.name }} {{ item.colour }}"))

    with pytest.raises(PrepareError) as raised:
        renderer.render("p1", {"name": "Ann"}, None)

    message = str(raised.value)
    assert message.startswith("inline.j2: stage 'doc_en', item 'p1': ")
    assert "undefined template variable 'colour'" in message
    assert "the item has name" in message


def test_missing_top_level_variable_is_named() -> None:
    renderer = StageRenderer(_stage("{{ product }}"))

    with pytest.raises(PrepareError, match="undefined template variable 'product'"):
        renderer.render("p1", {}, None)


def test_null_value_renders_default() -> None:
    renderer = StageRenderer(_stage("{{ item.url or 'none listed' }}"))

    request = renderer.render("p1", {"url": None}, None)

    assert "none listed" in request.line


def test_source_is_visible_to_dependent_stage() -> None:
    renderer = StageRenderer(_stage("Translate: {{ source.content }}"))
    source = {"content": "Hello", "attempt_id": "a1", "custom_id": "x", "stage": "s"}

    request = renderer.render("p1", {}, source)

    assert request.source_attempt_id == "a1"
    assert "Translate: Hello" in request.line
