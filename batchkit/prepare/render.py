"""Render a stage's chat messages for each item into OpenAI batch lines."""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jinja2
import orjson

from batchkit.job.model import StageSpec
from batchkit.prepare.errors import PrepareError
from batchkit.prepare.tokens import estimate_prompt_tokens

CHAT_COMPLETIONS_URL = "/v1/chat/completions"

_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class RenderedRequest:
    """One request version, ready to store as a row of `request_versions`."""

    custom_id: str
    request_hash: str
    stage: str
    item_key: str
    model: str
    line: str
    line_bytes: int
    prompt_tokens_est: int
    max_tokens: int
    source_attempt_id: str | None


def make_custom_id(stage: str, item_key: str) -> str:
    """Return the stable, readable id of a stage's request for one item."""
    return f"{stage}:{item_key}"


def encode_line(line: dict[str, Any]) -> bytes:
    """Serialise one JSONL line; U+2028 and U+2029 are escaped so no reader splits it."""
    encoded = orjson.dumps(line)
    return encoded.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
        b"\xe2\x80\xa9", b"\\u2029"
    )


class StageRenderer:
    """Compiles a stage's templates once and renders them per item."""

    def __init__(self, stage: StageSpec) -> None:
        self.stage = stage
        self.templates = []
        for message in stage.messages:
            try:
                template = _ENVIRONMENT.from_string(message.template)
            except jinja2.TemplateSyntaxError as error:
                raise PrepareError(
                    f"{message.origin}: line {error.lineno}: invalid Jinja2 template "
                    f"in stage {stage.name!r}: {error.message}"
                ) from error
            self.templates.append((message.role, message.origin, template))
        self.parameters: dict[str, Any] = {"model": stage.model}
        self.parameters["max_tokens"] = stage.max_tokens
        if stage.temperature is not None:
            self.parameters["temperature"] = stage.temperature
        if stage.top_p is not None:
            self.parameters["top_p"] = stage.top_p
        self.parameters.update(stage.extra_body)

    def render(
        self, item_key: str, item: dict[str, Any], source: dict[str, Any] | None
    ) -> RenderedRequest:
        """Render one item's request; raise PrepareError on a missing variable."""
        context: dict[str, Any] = {"item": item, "stage": self.stage.name}
        if source is not None:
            context["source"] = source
        messages = []
        for role, origin, template in self.templates:
            try:
                content = template.render(context)
            except jinja2.UndefinedError as error:
                raise PrepareError(
                    f"{origin}: stage {self.stage.name!r}, item {item_key!r}: "
                    f"undefined template variable ({error.message}); the item has "
                    f"{', '.join(sorted(item))}"
                ) from error
            except jinja2.TemplateError as error:
                raise PrepareError(
                    f"{origin}: stage {self.stage.name!r}, item {item_key!r}: "
                    f"rendering failed: {error}"
                ) from error
            messages.append({"role": role, "content": content})

        body = {**self.parameters, "messages": messages}
        request_hash = hashlib.sha256(
            orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
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
            custom_id=custom_id,
            request_hash=request_hash,
            stage=self.stage.name,
            item_key=item_key,
            model=self.stage.model,
            line=line.decode(),
            line_bytes=len(line) + 1,
            prompt_tokens_est=estimate_prompt_tokens(messages),
            max_tokens=self.stage.max_tokens,
            source_attempt_id=None if source is None else source.get("attempt_id"),
        )

    def render_all(
        self, rows: Iterable[tuple[str, dict[str, Any], dict[str, Any] | None]]
    ) -> Iterator[RenderedRequest]:
        """Render (item_key, item, source) rows in order."""
        for item_key, item, source in rows:
            yield self.render(item_key, item, source)
