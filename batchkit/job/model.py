"""The job: inputs, items, stages, provider, prices and load target.

A `Job` is built only by `batchkit.job.loader.load_job`, which validates the
whole file first. Every path in it is absolute.
"""

from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal

InputFormat = Literal["csv", "parquet", "json", "jsonl"]
Layout = Literal["long", "wide"]
TargetKind = Literal["postgres", "rest", "parquet"]


@dataclass(frozen=True)
class InputSpec:
    """One named input table, loaded into DuckDB under `name`."""

    name: str
    path: Path
    format: InputFormat


@dataclass(frozen=True)
class ItemsSpec:
    """The SQL query that forms the items, and the columns of the item key."""

    query: str
    key: tuple[str, ...]


@dataclass(frozen=True)
class MessageSpec:
    """One chat message of a stage: its role and its Jinja2 template source."""

    role: str
    template: str
    origin: str  # the template file, or the job-file key of an inline template


@dataclass(frozen=True)
class ValidationRules:
    """The checks a stage's result must pass before it counts as valid."""

    enabled: bool = True
    finish_reason: str | None = "stop"
    min_chars: int | None = None
    max_chars: int | None = None
    language: Literal["en", "zh"] | None = None
    # Minimum share of the letters that must be in the stage's script
    # (Latin for en, CJK for zh).
    min_language_share: float = 0.5
    min_headings: int | None = None
    same_headings_as_source: bool = False
    heading_tolerance: int = 1
    forbidden: tuple[str, ...] = ()
    sql: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """One request per item: messages, model parameters, dependency, checks."""

    name: str
    messages: tuple[MessageSpec, ...]
    model: str
    max_tokens: int
    temperature: float | None
    top_p: float | None
    extra_body: dict[str, Any]
    depends_on: str | None
    when: str | None
    max_attempts: int
    validation: ValidationRules


@dataclass(frozen=True)
class PriceWindow:
    """A daily UTC time window in which prices are multiplied by `factor`."""

    start: time
    end: time
    factor: float

    def contains(self, moment: time) -> bool:
        """Return whether `moment` (UTC) lies in the window; it may span midnight."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class PriceEntry:
    """Prices of one model from `since` (UTC) on, in USD per million tokens."""

    model: str
    since: datetime
    input_miss: float
    input_hit: float
    output: float
    batch_factor: float = 0.5  # share of the price paid through the batch API
    windows: tuple[PriceWindow, ...] = ()


@dataclass(frozen=True)
class BatchLimits:
    """Limits of one provider batch file."""

    max_lines: int = 50_000
    max_bytes: int = 200_000_000
    max_enqueued_tokens: int | None = None
    completion_window: str = "24h"
    poll_interval: float = 30.0  # seconds between polls with --wait


@dataclass(frozen=True)
class ProviderSpec:
    """The OpenAI-compatible endpoint, its key variable and its caps."""

    name: str
    base_url: str
    api_key_env: str
    model: str
    rpm: int  # requests per minute
    tpm: int | None  # tokens per minute (prompt estimate + max_tokens)
    concurrency: int  # requests in flight at once
    connect_timeout: float  # seconds
    read_timeout: float  # seconds of silence before a read fails
    deadline: float  # seconds a request may take in all, however bytes trickle
    max_attempts: int
    batch: BatchLimits = field(default_factory=BatchLimits)


@dataclass(frozen=True)
class LoadSpec:
    """The load target of validated results and the shape of its rows."""

    target: TargetKind | None  # None: postgres if the URL variable is set, else parquet
    database_url_env: str
    supabase_url_env: str
    supabase_key_env: str
    table: str
    layout: Layout
    key: tuple[str, ...]  # item columns that form the target's unique key
    columns: dict[str, str]  # wide layout: stage name -> content column
    item_columns: tuple[str, ...]  # further item columns copied to the target
    chunk_rows: int = 500
    chunk_bytes: int = 8_000_000


@dataclass(frozen=True)
class Job:
    """A validated job file."""

    path: Path
    name: str
    run_dir: Path
    inputs: tuple[InputSpec, ...]
    items: ItemsSpec
    stages: tuple[StageSpec, ...]
    provider: ProviderSpec
    prices: tuple[PriceEntry, ...]
    load: LoadSpec

    @property
    def db_path(self) -> Path:
        return self.run_dir / "batchkit.duckdb"

    @property
    def requests_dir(self) -> Path:
        return self.run_dir / "requests"

    @property
    def responses_dir(self) -> Path:
        return self.run_dir / "responses"

    @property
    def wal_dir(self) -> Path:
        return self.run_dir / "responses" / "wal"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def export_dir(self) -> Path:
        return self.run_dir / "export"

    def stage(self, name: str) -> StageSpec:
        """Return the stage called `name`."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)
