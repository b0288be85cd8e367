"""Token estimates and the prefix cache."""

import pytest

from batchkit.simulate.tokens import PrefixCache, count_tokens, truncate_to_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("abcd", 1), ("abcde", 2), ("a" * 400, 100), ("中文", 2), ("中" * 10, 7)],
)
def test_count_tokens(text, tokens):
    assert count_tokens(text) == tokens


def test_count_tokens_mixed_text():
    assert count_tokens("abcd" * 10 + "中" * 10) == 17


@pytest.mark.parametrize("budget", [1, 10, 99])
def test_truncate_to_tokens(budget):
    text = "word " * 200 + "字" * 100
    cut = truncate_to_tokens(text, budget)
    assert count_tokens(cut) <= budget
    assert count_tokens(cut) >= budget * 0.9
    assert text.startswith(cut)


def test_prefix_cache_counts_whole_units():
    cache = PrefixCache()
    prompt = "x" * 2000
    assert cache.lookup(prompt, 500) == 0
    cache.store(prompt)
    assert cache.lookup(prompt, 500) == 448
    assert cache.lookup(prompt[:1000] + "y" * 1000, 500) == 192
    assert cache.lookup("y" + prompt, 500) == 0


def test_prefix_cache_clear():
    cache = PrefixCache()
    cache.store("z" * 1000)
    cache.clear()
    assert cache.lookup("z" * 1000, 250) == 0
