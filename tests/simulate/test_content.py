"""Generated text: language, length, headings and reasoning."""

import random

import pytest

from batchkit.load.validate import count_headings, language_share
from batchkit.simulate.content import (
    ContentGenerator,
    compose_markdown,
    detect_language,
    parse_length,
    source_heading_levels,
)


@pytest.mark.parametrize(
    ("prompt", "bounds"),
    [
        ("Length: 2,000–4,000 characters.", (2000, 4000)),
        ("between 800 and 1500 characters", (800, 1500)),
        ("800-1500 characters", (800, 1500)),
        ("800 to 1,500 characters long", (800, 1500)),
        ("800 — 1500 chars", (800, 1500)),
        ("长度：700–2,000 字", (700, 2000)),
        ("about 1000 characters", (900, 1100)),
        ("300-500 words", (1800, 3000)),
        ("no length here", None),
    ],
)
def test_parse_length(prompt, bounds):
    assert parse_length(prompt) == bounds


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("Write a test plan. Write in English.", "en"),
        ("Translate the document into Simplified Chinese.\n\n# Plan", "zh"),
        ("请用简体中文翻译下面的文档。", "zh"),
        ("请写一份产品需求文档，介绍这个产品的目标用户。", "zh"),
        ("请把下面的文档翻译成英文。\n\n# 计划", "en"),
        ("Describe the product 产品 briefly.", "en"),
    ],
)
def test_detect_language(prompt, language):
    assert detect_language(prompt) == language


def test_heading_levels_only_for_translation():
    document = "# A\n\n## B\n\ntext\n\n### C"
    assert source_heading_levels("Translate this:\n\n" + document) == [1, 2, 3]
    assert source_heading_levels("Summarize this:\n\n" + document) is None


@pytest.mark.parametrize("language", ["en", "zh"])
def test_compose_markdown_hits_target(language):
    for seed in range(50):
        text = compose_markdown([1, 2, 2, 2], 1500, language, random.Random(seed))
        assert 1380 <= len(text) <= 1650
        assert count_headings(text) == 4
        assert language_share(text, language) > 0.95


def test_lengths_stay_in_requested_range():
    generator = ContentGenerator(seed=0, default_chars=1500)
    for index in range(100):
        prompt = f"Item {index}. Length: 800–1,500 characters."
        answer = generator.generate("deepseek-chat", prompt)
        assert 800 <= len(answer.content) <= 1500


def test_default_length_without_phrase():
    generator = ContentGenerator(seed=0, default_chars=600)
    answer = generator.generate("deepseek-chat", "Tell me about it.")
    assert 400 <= len(answer.content) <= 800


def test_answer_cached_and_deterministic():
    first = ContentGenerator(seed=3, default_chars=1500)
    second = ContentGenerator(seed=3, default_chars=1500)
    answer = first.generate("deepseek-chat", "Hello")
    assert first.generate("deepseek-chat", "Hello") is answer
    assert second.generate("deepseek-chat", "Hello") == answer


def test_reasoner_adds_reasoning():
    generator = ContentGenerator(seed=0, default_chars=1500)
    plain = generator.generate("deepseek-chat", "Hello")
    reasoned = generator.generate("deepseek-reasoner", "Hello")
    assert plain.reasoning is None
    assert plain.reasoning_tokens == 0
    assert reasoned.reasoning
    low, high = 0.3 * reasoned.content_tokens, 0.6 * reasoned.content_tokens
    assert low - 30 <= reasoned.reasoning_tokens <= high + 30
