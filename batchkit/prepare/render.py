"""Render a stage's chat messages for each item into OpenAI batch lines."""

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import jinja2
import orjson

from batchkit.job.model import StageSpec
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.tokens import estimate_prompt_tokens

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

# Item values are inserted as text: Jinja2 never renders the output of `{{ }}`
# again, so a value containing `{{ x }}` or `{% if %}` appears as written.
_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)
# A plain copy of the environment's globals (range, dict, namespace ...). Each
# render builds its context from it with `shared=True`, which skips Jinja2's
# per-render merge of the globals ChainMap, a third of the render time.
_GLOBALS = dict(_ENVIRONMENT.globals)
_UNDEFINED_NAME = re.compile(r"has no attribute '([^']*)'|'([^']*)' is undefined")


class RenderedRequest(NamedTuple):
    """One request version, in the column order of `request_versions`."""

    custom_id: str
    request_hash: str
    stage: str
    item_key: str
    model: str
    line: str
    line_bytes: int  # including the line's closing newline
    prompt_tokens_est: int
    max_tokens: int
    source_attempt_id: str | None


def make_custom_id(stage: str, item_key: str) -> str:
    """Return the stable, readable id of a stage's request for one item."""
    return f"{stage}:{item_key}"


def encode_line(line: dict[str, Any]) -> bytes:
    """Serialise one JSONL line, escaping the line breaks that JSON leaves raw.

    orjson escapes control characters below U+0020, such as `\\r` and `\\n`,
    but writes U+0085, U+2028 and U+2029 as they are, and Python's
    `str.splitlines()` breaks lines at them. Their UTF-8 bytes occur nowhere
    else, because 0xC2 and 0xE2 only ever start a character.
    """
    encoded = orjson.dumps(line)
    if encoded.isascii():
        return encoded
    if b"\xc2\x85" in encoded:
        encoded = encoded.replace(b"\xc2\x85", b"\\u0085")
    if b"\xe2\x80" in encoded:
        encoded = encoded.replace(b"\xe2\x80\xa8", b"\\u2028")
        encoded = encoded.replace(b"\xe2\x80\xa9", b"\\u2029")
    return encoded


def hash_body(body: dict[str, Any]) -> str:
    """Return the request_hash of a request body: SHA-256 of its sorted-key JSON."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[
        :32
    ]


def _compile(stage: StageSpec) -> list[tuple[str, str, jinja2.Template]]:
    templates = []
    for message in stage.messages:
        try:
            template = _ENVIRONMENT.from_string(message.template)
        except jinja2.TemplateSyntaxError as error:
            raise PrepareError(
                f"{message.origin}: line {error.lineno}: invalid Jinja2 template "
                f"in stage {stage.name!r}: {error.message}; fix the template"
            ) from error
        templates.append((message.role, message.origin, template))
    return templates


def _body_parameters(stage: StageSpec) -> dict[str, Any]:
    parameters: dict[str, Any] = {"model": stage.model, "max_tokens": stage.max_tokens}
    if stage.temperature is not None:
        parameters["temperature"] = stage.temperature
    if stage.top_p is not None:
        parameters["top_p"] = stage.top_p
    parameters.update(stage.extra_body)
    return parameters


def _undefined_message(error: jinja2.UndefinedError) -> str:
    match = _UNDEFINED_NAME.search(error.message or "")
    if match is None:
        return f"undefined template variable ({error.message})"
    return f"undefined template variable {match.group(1) or match.group(2)!r}"


class StageRenderer:
    """Compiles a stage's templates once and renders them per item."""

    def __init__(self, stage: StageSpec) -> None:
        self.stage = stage
        self.templates = _compile(stage)
        self.parameters = _body_parameters(stage)

    def render_messages(
        self, item_key: str, item: dict[str, Any], source: dict[str, Any] | None
    ) -> list[dict[str, str]]:
        """Render the stage's chat messages for one item.

        Raises PrepareError naming the template, the stage, the item key and
        the variable when a template uses a variable the item lacks.
        """
        context = {**_GLOBALS, "item": item, "stage": self.stage.name}
        if source is not None:
            context["source"] = source
        messages = []
        for role, origin, template in self.templates:
            try:
                content = "".join(
                    template.root_render_func(
                        template.new_context(context, shared=True)
                    )
                )
            except jinja2.UndefinedError as error:
                raise PrepareError(
                    f"{origin}: stage {self.stage.name!r}, item {item_key!r}: "
                    f"{_undefined_message(error)}; the item has "
                    f"{', '.join(sorted(item))}. Fix the template or add the column "
                    "to items.query"
                ) from error
            except jinja2.TemplateError as error:
                raise PrepareError(
                    f"{origin}: stage {self.stage.name!r}, item {item_key!r}: "
                    f"rendering failed: {error}; fix the template"
                ) from error
            messages.append({"role": role, "content": content})
        return messages

    def render(
        self, item_key: str, item: dict[str, Any], source: dict[str, Any] | None
    ) -> RenderedRequest:
        """Render one item's request as a batch line with its hash and estimate."""
        messages = self.render_messages(item_key, item, source)
        body = {**self.parameters, "messages": messages}
        custom_id = make_custom_id(self.stage.name, item_key)
        line = encode_line(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": CHAT_COMPLETIONS_URL,
                "body": body,
            }
        )
        return RenderedRequest(
            custom_id,
            hash_body(body),
            self.stage.name,
            item_key,
            self.stage.model,
            line.decode(),
            len(line) + 1,
            estimate_prompt_tokens(messages),
            self.stage.max_tokens,
            None if source is None else source.get("attempt_id"),
        )

    def render_all(
        self, rows: Iterable[tuple[str, dict[str, Any], dict[str, Any] | None]]
    ) -> Iterator[RenderedRequest]:
        """Render (item_key, item, source) rows in order."""
        for item_key, item, source in rows:
            yield self.render(item_key, item, source)
