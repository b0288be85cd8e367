"""Generated text: Markdown in the requested language and length.

The text depends only on the prompt, the model kind and the seed, so a
repeated request gets the same text. The generator reads the prompt for:

- the language: Simplified Chinese when the prompt requests Chinese (for
  example "Translate ... into Simplified Chinese", "请用简体中文") or is mostly
  written in Chinese, else English;
- the length: the first phrase such as `2,000–4,000 characters`,
  `between 800 and 1500 characters`, `800-1500 characters`, `800 to 1500
  characters`, `about 1200 characters` or `300–500 words` (6 characters per
  word), else `default_chars`;
- the headings: a translation request (it says translate and contains a
  Markdown document) gets the source's heading levels in the same order;
  other requests get one `#` title and 3 to 6 `##` sections.

Reasoner models (the name contains `reasoner`) also get reasoning text, 30 to
60 % of the content's tokens.
"""

import hashlib
import random
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from batchkit.simulate import pools
from batchkit.simulate.tokens import LATIN_CHARS_PER_TOKEN, count_tokens

Language = Literal["en", "zh"]

CACHE_ENTRIES = 8_192
CHARS_PER_WORD = 6
# A translation without a length phrase is about this share of its source.
TRANSLATION_RATIO = {"zh": 0.35, "en": 2.8}

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_UNIT = r"(characters?|chars?|words?|个字符|字符|字)"
_RANGE = re.compile(
    rf"{_NUMBER}\s*(?:–|—|-|~|to|and|至|到)\s*{_NUMBER}\s*{_UNIT}", re.IGNORECASE
)
_SINGLE = re.compile(rf"{_NUMBER}\s*{_UNIT}", re.IGNORECASE)
_TARGET = re.compile(
    r"\b(?:translat\w*|writ\w*|answer\w*|respon\w*|repl\w*)\b[^.\n]{0,60}?"
    r"\b(?:into|in|to)\s+(?:simplified\s+)?(chinese|english)\b",
    re.IGNORECASE,
)
_ZH_WORDS = re.compile(r"简体中文|中文|汉语|译成中|翻译成中")
_EN_WORDS = re.compile(r"英文|英语")
_TRANSLATE = re.compile(r"translat|翻译|译成", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})[ \t]+\S", re.MULTILINE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class GeneratedText:
    """Generated content and reasoning, before any max_tokens cut."""

    content: str
    content_tokens: int
    reasoning: str | None
    reasoning_tokens: int


def is_reasoner(model: str) -> bool:
    """Return True for models that produce reasoning content."""
    return "reasoner" in model


def detect_language(prompt: str) -> Language:
    """Return the language the prompt requests, or else the one it is written in."""
    target = _TARGET.search(prompt)
    if target is not None:
        return "zh" if target.group(1).lower() == "chinese" else "en"
    asks_chinese = _ZH_WORDS.search(prompt) is not None
    asks_english = _EN_WORDS.search(prompt) is not None
    if asks_chinese != asks_english:
        return "zh" if asks_chinese else "en"
    cjk = len(_CJK.findall(prompt))
    latin = len(_LATIN.findall(prompt))
    # Chinese packs about four times the meaning per character, so a prompt
    # with a quarter of its letters in CJK reads as Chinese.
    return "zh" if cjk * 4 > latin else "en"


def parse_length(prompt: str) -> tuple[int, int] | None:
    """Return the (min, max) characters the prompt requests, if it names a length."""
    match = _RANGE.search(prompt)
    if match is not None:
        low, high = _number(match.group(1)), _number(match.group(2))
        scale = _unit_scale(match.group(3))
        return min(low, high) * scale, max(low, high) * scale
    match = _SINGLE.search(prompt)
    if match is not None:
        size = _number(match.group(1)) * _unit_scale(match.group(2))
        return size * 9 // 10, size * 11 // 10
    return None


def source_heading_levels(prompt: str) -> list[int] | None:
    """Return the heading levels of the document a translation request contains."""
    if _TRANSLATE.search(prompt) is None:
        return None
    levels = [len(match.group(1)) for match in _HEADING.finditer(prompt)]
    return levels or None


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _unit_scale(unit: str) -> int:
    return CHARS_PER_WORD if unit.lower().startswith("word") else 1


class ContentGenerator:
    """Generator of Markdown text that keeps the most recent results by prompt."""

    def __init__(self, seed: int, default_chars: int) -> None:
        self.seed = seed
        self.default_chars = default_chars
        self._cache: OrderedDict[bytes, GeneratedText] = OrderedDict()

    def generate(self, model: str, prompt: str) -> GeneratedText:
        """Generate the text for `prompt`, the same for the same prompt and seed."""
        reasoner = is_reasoner(model)
        key = hashlib.blake2b(
            f"{self.seed}\x00{reasoner}\x00{prompt}".encode(), digest_size=16
        ).digest()
        text = self._cache.get(key)
        if text is not None:
            self._cache.move_to_end(key)
            return text
        text = self._compose(prompt, reasoner, random.Random(key))
        self._cache[key] = text
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return text

    def _compose(
        self, prompt: str, reasoner: bool, rng: random.Random
    ) -> GeneratedText:
        language = detect_language(prompt)
        levels = source_heading_levels(prompt)
        target = self._target_chars(prompt, levels, language, rng)
        if levels is None:
            levels = [1] + [2] * rng.randint(3, 6)
        content = compose_markdown(levels, target, language, rng)
        content_tokens = count_tokens(content)
        if not reasoner:
            return GeneratedText(content, content_tokens, None, 0)
        reasoning_budget = int(content_tokens * rng.uniform(0.3, 0.6))
        reasoning = compose_reasoning(reasoning_budget, rng)
        return GeneratedText(
            content, content_tokens, reasoning, count_tokens(reasoning)
        )

    def _target_chars(
        self,
        prompt: str,
        levels: list[int] | None,
        language: Language,
        rng: random.Random,
    ) -> int:
        bounds = parse_length(prompt)
        if bounds is None and levels is not None:
            first_heading = _HEADING.search(prompt)
            source_chars = len(prompt) - (first_heading.start() if first_heading else 0)
            size = int(source_chars * TRANSLATION_RATIO[language])
            bounds = (size * 9 // 10, size * 11 // 10)
        if bounds is None:
            bounds = (self.default_chars * 8 // 10, self.default_chars * 12 // 10)
        low, high = bounds
        # Aim at the middle half, because sections end on whole sentences.
        margin = (high - low) // 4
        return max(rng.randint(low + margin, high - margin), 1)


def compose_markdown(
    levels: list[int], target: int, language: Language, rng: random.Random
) -> str:
    """Return a Markdown document with headings at `levels`, about `target` chars."""
    english = language == "en"
    titles = pools.EN_TITLES if english else pools.ZH_TITLES
    headings = pools.EN_HEADINGS if english else pools.ZH_HEADINGS
    names = iter(rng.sample(headings, min(len(levels), len(headings))))
    blocks: list[str] = []
    length = 0
    for index, level in enumerate(levels):
        name = rng.choice(titles) if level == 1 else next(names, rng.choice(headings))
        blocks.append("#" * level + " " + name)
        length += len(blocks[-1]) + 2
        sections_left = len(levels) - index
        is_last = sections_left == 1
        budget = max((target - length) // sections_left, 0)
        body = _compose_section(budget, is_last, english, rng)
        blocks.append(body)
        length += len(body) + 2
    return "\n\n".join(blocks)


def _compose_section(
    budget: int, is_last: bool, english: bool, rng: random.Random
) -> str:
    # Every section but the last stops before it would pass its budget. The
    # last one fills up to the target, so the total lands just past it.
    sentences = pools.EN_SENTENCES if english else pools.ZH_SENTENCES
    picked: list[str] = []
    size = 0
    while True:
        sentence = rng.choice(sentences)
        if picked and not is_last and size + len(sentence) + 1 > budget:
            break
        picked.append(sentence)
        size += len(sentence) + 1
        if is_last and size >= budget:
            break
    if rng.random() < 0.3:
        return "\n".join("- " + sentence for sentence in picked)
    joiner = " " if english else ""
    paragraphs = [joiner.join(picked[i : i + 3]) for i in range(0, len(picked), 3)]
    return "\n\n".join(paragraphs)


def compose_reasoning(tokens: int, rng: random.Random) -> str:
    """Return English reasoning text of about `tokens` tokens."""
    target = max(tokens, 1) * LATIN_CHARS_PER_TOKEN
    picked: list[str] = []
    size = 0
    while size < target:
        sentence = rng.choice(pools.REASONING_SENTENCES)
        picked.append(sentence)
        size += len(sentence) + 1
    return " ".join(picked)
