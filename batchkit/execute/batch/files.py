"""Write pending requests into provider batch files within the provider's limits.

Each file contains one model's requests (the OpenAI batch API requires it) and
stays within `max_lines`, `max_bytes` and, when set, `max_enqueued_tokens`
(prompt estimate + max_tokens of every line). A model's token budget also
counts what its live batches have enqueued already, so requests over the
budget wait for a later run instead of failing a whole batch.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from batchkit.execute.batch.errors import BatchFileError
from batchkit.job.model import BatchLimits

if TYPE_CHECKING:
    from batchkit.execute.select import PendingRequest

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class BatchFile:
    """One written batch file: its model, size and the requests it contains."""

    path: Path
    model: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # custom_id, hash
    byte_count: int = 0
    token_count: int = 0  # prompt estimate + max_tokens, summed

    @property
    def line_count(self) -> int:
        return len(self.requests)


@dataclass(frozen=True)
class Oversized:
    """A request that no batch file can contain, and why."""

    request: "PendingRequest"
    reason: str


def request_tokens(request: "PendingRequest") -> int:
    """Return the tokens a request enqueues: its prompt estimate plus max_tokens."""
    return request.prompt_tokens_est + request.max_tokens


def line_size(request: "PendingRequest") -> int:
    """Return the bytes a request takes in a batch file, newline included."""
    return len(request.line.encode()) + 1


class BatchFileWriter:
    """Streams requests into files under `directory`, one open file per model.

    `enqueued` maps a model to the tokens its live batches hold already, which
    count against `limits.max_enqueued_tokens`.
    """

    def __init__(
        self,
        directory: Path,
        limits: BatchLimits,
        enqueued: Mapping[str, int] | None = None,
        first_number: int = 1,
    ) -> None:
        self.directory = directory
        self.limits = limits
        self.files: list[BatchFile] = []
        self.oversized: list[Oversized] = []
        self.deferred = 0  # requests left for a later run by the token budget
        self._open: dict[str, tuple[BatchFile, IO[str]]] = {}
        self._seen: set[str] = set()
        self._count = first_number - 1
        self._budgets: dict[str, int] = {}
        cap = limits.max_enqueued_tokens
        if cap is not None:
            for model, tokens in (enqueued or {}).items():
                self._budgets[model] = cap - tokens

    def add(self, request: "PendingRequest") -> None:
        """Write `request` into its model's file, or record why it cannot go."""
        if request.custom_id in self._seen:
            raise BatchFileError(
                f"custom_id {request.custom_id!r} is selected twice for one batch "
                "run; every line of a provider batch needs its own custom_id, so "
                "check the request store for duplicate versions"
            )
        reason = self._oversize_reason(request)
        if reason is not None:
            self.oversized.append(Oversized(request, reason))
            return
        tokens = request_tokens(request)
        cap = self.limits.max_enqueued_tokens
        if cap is not None:
            budget = self._budgets.get(request.model, cap)
            if tokens > budget:
                self.deferred += 1
                return
            self._budgets[request.model] = budget - tokens
        self._seen.add(request.custom_id)
        self._write(request, tokens)

    def __enter__(self) -> "BatchFileWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for _, handle in self._open.values():
            handle.close()  # after close() nothing is open; after an error, discard

    @property
    def next_number(self) -> int:
        """Return the number the next file of this run gets."""
        return self._count + 1

    def close(self) -> list[BatchFile]:
        """Close every open file and return all files written."""
        for model in list(self._open):
            self._close(model)
        return self.files

    def _oversize_reason(self, request: "PendingRequest") -> str | None:
        size = line_size(request)
        if size > self.limits.max_bytes:
            return (
                f"the request line is {size} bytes, over provider.batch.max_bytes "
                f"= {self.limits.max_bytes}; shorten the prompt or use --mode stream"
            )
        cap = self.limits.max_enqueued_tokens
        tokens = request_tokens(request)
        if cap is not None and tokens > cap:
            return (
                f"the request needs about {tokens} tokens (prompt estimate + "
                f"max_tokens), over provider.batch.max_enqueued_tokens = {cap}; "
                "lower the stage's max_tokens or use --mode stream"
            )
        return None

    def _write(self, request: "PendingRequest", tokens: int) -> None:
        size = line_size(request)
        current = self._open.get(request.model)
        if current is not None and self._is_full(current[0], size, tokens):
            self._close(request.model)
            current = None
        if current is None:
            current = self._start(request.model)
        batch_file, handle = current
        handle.write(request.line)
        handle.write("\n")
        batch_file.requests.append((request.custom_id, request.request_hash))
        batch_file.byte_count += size
        batch_file.token_count += tokens

    def _is_full(self, batch_file: BatchFile, size: int, tokens: int) -> bool:
        limits = self.limits
        if batch_file.line_count >= limits.max_lines:
            return True
        if batch_file.byte_count + size > limits.max_bytes:
            return True
        cap = limits.max_enqueued_tokens
        return cap is not None and batch_file.token_count + tokens > cap

    def _start(self, model: str) -> tuple[BatchFile, IO[str]]:
        self._count += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self._count:05d}-{_UNSAFE.sub('_', model)}.jsonl"
        handle = path.open("w", encoding="utf-8", newline="\n")
        batch_file = BatchFile(path=path, model=model)
        self._open[model] = (batch_file, handle)
        return batch_file, handle

    def _close(self, model: str) -> None:
        batch_file, handle = self._open.pop(model)
        handle.close()
        self.files.append(batch_file)
