"""Cheap token counts and the prompt prefix cache.

Token counts are an estimate, not a tokenizer: about 4 Latin characters per
token and 0.7 token per CJK character. Any character outside ASCII counts as
CJK, which is the usual case in the simulator's traffic (English and Chinese).
Each chat message adds 4 tokens for its role markers.

The prefix cache works like DeepSeek's context cache: a prompt whose leading
part was served before reports that part as cache hits, in whole 64-token
units. The prompt is cut into fixed blocks of characters, so two prompts with
the same beginning share their leading blocks whatever follows.
"""

import math

LATIN_CHARS_PER_TOKEN = 4
TOKENS_PER_CJK_CHAR = 0.7
TOKENS_PER_MESSAGE = 4

CACHE_UNIT_TOKENS = 64
CACHE_BLOCK_CHARS = 128
# The cache is cleared once it contains this many blocks, so memory stays
# bounded on long runs (a real provider evicts entries too).
CACHE_MAX_BLOCKS = 2_000_000


def count_tokens(text: str) -> int:
    """Return the estimated token count of `text`."""
    if text.isascii():
        return (len(text) + LATIN_CHARS_PER_TOKEN - 1) // LATIN_CHARS_PER_TOKEN
    length = len(text)
    # A CJK character takes 3 bytes in UTF-8 and an ASCII one 1, so the extra
    # bytes give the number of wide characters without a per-character loop.
    wide = min((len(text.encode("utf-8")) - length) // 2, length)
    narrow = length - wide
    return math.ceil(narrow / LATIN_CHARS_PER_TOKEN + wide * TOKENS_PER_CJK_CHAR)


def truncate_to_tokens(text: str, budget: int) -> str:
    """Return the longest leading part of `text` within `budget` tokens."""
    if budget <= 0:
        return ""
    if count_tokens(text) <= budget:
        return text
    # Token counts grow with the prefix length, so a binary search finds it.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low]


class PrefixCache:
    """Prompt prefixes served before, as chained hashes of character blocks."""

    def __init__(self) -> None:
        self._blocks: set[int] = set()

    def lookup(self, prompt: str, prompt_tokens: int) -> int:
        """Return how many leading tokens of `prompt` are cache hits."""
        if len(prompt) < CACHE_BLOCK_CHARS or not self._blocks:
            return 0
        matched_chars = 0
        chain = 0
        for start in range(0, len(prompt) - CACHE_BLOCK_CHARS + 1, CACHE_BLOCK_CHARS):
            chain = hash((chain, prompt[start : start + CACHE_BLOCK_CHARS]))
            if chain not in self._blocks:
                break
            matched_chars = start + CACHE_BLOCK_CHARS
        if matched_chars == 0:
            return 0
        hit = count_tokens(prompt[:matched_chars])
        hit -= hit % CACHE_UNIT_TOKENS
        return min(hit, prompt_tokens)

    def store(self, prompt: str) -> None:
        """Remember every whole block of `prompt` as a cached prefix."""
        if len(prompt) < CACHE_BLOCK_CHARS:
            return
        if len(self._blocks) > CACHE_MAX_BLOCKS:
            self._blocks.clear()
        chain = 0
        for start in range(0, len(prompt) - CACHE_BLOCK_CHARS + 1, CACHE_BLOCK_CHARS):
            chain = hash((chain, prompt[start : start + CACHE_BLOCK_CHARS]))
            self._blocks.add(chain)

    def clear(self) -> None:
        """Forget every cached prefix."""
        self._blocks.clear()
