"""Read a job file (TOML), check all of it, and build a `Job`.

Every problem is collected first and reported together, each as
`<file>: <key> = <value>: <what is wrong>; <what to do>`. Unknown sections and
keys come first, because a misspelt name is often what causes the other
problems. An unknown key is reported without its value, which may be a secret
such as a database URL.
"""

import difflib
import os
import re
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from batchkit.job.errors import JobError
from batchkit.job.model import (
    BatchLimits,
    InputSpec,
    ItemsSpec,
    Job,
    LoadSpec,
    MessageSpec,
    PriceEntry,
    PriceWindow,
    ProviderSpec,
    StageSpec,
    ValidationRules,
)

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Input tables share the job database with these tables and views.
RESERVED_NAMES = {
    "requests",
    "request_versions",
    "request_status",
    "attempt_costs",
    "retry_distribution",
    "throughput",
    "estimate_vs_actual",
    "attempts",
    "results",
    "valid_results",
    "rejects",
    "failures",
    "costs",
    "progress",
    "latency",
    "retries",
    "items",
    "verdicts",
    "stages",
    "prices",
    "estimates",
    "provider_batches",
    "batch_requests",
    "load_ledger",
    "batchkit_meta",
    "current_items",
    "raw_items",
}
INPUT_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
}
ROLES = {"system", "user", "assistant", "developer"}
SECTIONS = {"job", "inputs", "items", "provider", "stages", "prices", "load"}
JOB_KEYS = {"name", "run_dir"}
INPUT_KEYS = {"path", "format"}
ITEMS_KEYS = {"query", "key"}
PROVIDER_KEYS = {
    "name",
    "base_url",
    "api_key_env",
    "model",
    "rpm",
    "tpm",
    "concurrency",
    "connect_timeout",
    "read_timeout",
    "deadline",
    "max_attempts",
    "batch",
}
BATCH_KEYS = {
    "max_lines",
    "max_bytes",
    "max_enqueued_tokens",
    "completion_window",
    "poll_interval",
}
STAGE_KEYS = {
    "name",
    "messages",
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "extra_body",
    "depends_on",
    "when",
    "max_attempts",
    "validate",
}
MESSAGE_KEYS = {"role", "file", "text"}
VALIDATE_KEYS = {
    "enabled",
    "finish_reason",
    "min_chars",
    "max_chars",
    "language",
    "min_language_share",
    "min_headings",
    "same_headings_as_source",
    "heading_tolerance",
    "forbidden",
    "sql",
}
PRICE_KEYS = {
    "model",
    "since",
    "input_miss",
    "input_hit",
    "output",
    "batch_factor",
    "windows",
}
WINDOW_KEYS = {"start", "end", "factor"}
LOAD_KEYS = {
    "target",
    "database_url_env",
    "supabase_url_env",
    "supabase_key_env",
    "table",
    "layout",
    "key",
    "columns",
    "item_columns",
    "chunk_rows",
    "chunk_bytes",
}


class _Checker:
    """Collects problems while the job file is read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unknown: list[str] = []
        self.problems: list[str] = []

    def add(self, key: str, value: Any, problem: str) -> None:
        shown = "(missing)" if value is None else repr(value)
        self.problems.append(f"{self.path}: {key} = {shown}: {problem}")

    def table(self, data: dict[str, Any], key: str, name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.add(key, value, "must be a table")
            return {}
        return value

    def text(
        self, data: dict[str, Any], key: str, name: str, default: str | None = None
    ) -> str | None:
        value = data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(key, value, "must be a non-empty string")
            return default
        return value

    def required_text(self, data: dict[str, Any], key: str, name: str) -> str:
        value = self.text(data, key, name)
        if value is None:
            self.add(key, None, "is required")
            return ""
        return value

    def number(
        self,
        data: dict[str, Any],
        key: str,
        name: str,
        default: float | None,
        *,
        unit: str,
        minimum: float = 0.0,
        integer: bool = False,
        allow_zero: bool = False,
    ) -> Any:
        value = data.get(name, default)
        if value is None:
            return None
        kind = int if integer else (int, float)
        is_number = isinstance(value, kind) and not isinstance(value, bool)
        too_small = is_number and (value < minimum or (value == 0 and not allow_zero))
        if not is_number or too_small:
            adjective = "non-negative" if allow_zero else "positive"
            noun = "whole number" if integer else "number"
            self.add(key, value, f"must be a {adjective} {noun} of {unit}")
            return default
        return value

    def known_keys(
        self,
        data: dict[str, Any],
        key: str,
        known: set[str],
        *,
        reported_elsewhere: frozenset[str] = frozenset(),
    ) -> None:
        """Report each key of `data` outside `known`, with the closest known key.

        A misspelt key would otherwise be ignored and its default used.
        """
        for name in sorted(set(data) - known - reported_elsewhere):
            hint = _closest(name, known)
            listed = ", ".join(sorted(known))
            problem = (
                f"unknown key; did you mean {hint!r}? Known keys: {listed}"
                if hint
                else f"unknown key; known keys: {listed}"
            )
            self.unknown.append(f"{self.path}: {key}.{name}: {problem}")

    def known_sections(self, data: dict[str, Any]) -> None:
        for name in sorted(set(data) - SECTIONS):
            hint = _closest(name, SECTIONS)
            listed = ", ".join(sorted(SECTIONS))
            problem = (
                f"unknown section; did you mean [{hint}]? Known sections: {listed}"
                if hint
                else f"unknown section; known sections: {listed}"
            )
            self.unknown.append(f"{self.path}: {name} = '...': {problem}")

    def all_problems(self) -> list[str]:
        return [*self.unknown, *self.problems]

    def names(self, data: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(key, value, "must be a list of strings")
            return ()
        return tuple(value)


def load_job(path: Path | str) -> Job:
    """Read and validate the job file at `path`; raise JobError listing all problems."""
    path = Path(path)
    if not path.is_file():
        raise JobError(
            f"{path}: job file not found; pass one with -j (for example "
            "-j jobs/productmind/job.toml)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise JobError(f"{path}: invalid TOML: {error}") from error

    path = path.resolve()
    check = _Checker(path)
    base = path.parent
    check.known_sections(data)
    job_table = check.table(data, "job", "job")
    check.known_keys(job_table, "job", JOB_KEYS)
    name = check.text(job_table, "job.name", "name", path.parent.name) or "job"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        check.add("job.name", name, "use letters, digits, '.', '_' and '-' only")
    run_dir = _read_run_dir(check, job_table, base, name)

    inputs = _read_inputs(check, data, base)
    items = _read_items(check, data)
    provider = _read_provider(check, check.table(data, "provider", "provider"))
    stages = _read_stages(check, data, base, provider)
    prices = _read_prices(check, data)
    load = _read_load(check, check.table(data, "load", "load"), stages)

    problems = check.all_problems()
    if problems:
        raise JobError(_summarise(problems))
    return Job(
        path=path,
        name=name,
        run_dir=run_dir,
        inputs=inputs,
        items=items,
        stages=stages,
        provider=provider,
        prices=prices,
        load=load,
    )


def _closest(name: str, known: set[str]) -> str | None:
    matches = difflib.get_close_matches(name, sorted(known), n=1)
    return matches[0] if matches else None


def _summarise(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"the job file has {len(problems)} problems:\n{lines}"


def _read_run_dir(
    check: _Checker, job_table: dict[str, Any], base: Path, name: str
) -> Path:
    # job.run_dir moves one job's output and BATCHKIT_RUNS every job's. The
    # default depends only on where the job file is, never on the working
    # directory, so every command finds the same job database.
    configured = check.text(job_table, "job.run_dir", "run_dir")
    if configured is not None:
        return (base / configured).resolve()
    runs = os.environ.get("BATCHKIT_RUNS")
    root = Path(runs) if runs else _default_runs_folder(base)
    return (root / name).resolve()


def _default_runs_folder(job_folder: Path) -> Path:
    """Return `runs/` in the project root above `job_folder`, else beside the job.

    The project root is the nearest folder, `job_folder` included, that
    contains a `runs/` folder, a `.git` entry or a `pyproject.toml`.
    """
    for folder in (job_folder, *job_folder.parents):
        if _is_project_root(folder):
            return folder / "runs"
    return job_folder / "runs"


def _is_project_root(folder: Path) -> bool:
    try:
        return (
            (folder / "runs").is_dir()
            or (folder / ".git").exists()
            or (folder / "pyproject.toml").exists()
        )
    except OSError:  # an unreadable folder, such as another user's home
        return False


def _read_inputs(
    check: _Checker, data: dict[str, Any], base: Path
) -> tuple[InputSpec, ...]:
    table = check.table(data, "inputs", "inputs")
    if not table:
        check.add(
            "inputs", None, "at least one input is required, e.g. [inputs.products]"
        )
    inputs = []
    for name, spec in table.items():
        key = f"inputs.{name}"
        if not NAME_PATTERN.match(name) or name.lower() in RESERVED_NAMES:
            check.add(
                key,
                name,
                "invalid table name; use a letter then letters, digits "
                f"or '_', and none of: {', '.join(sorted(RESERVED_NAMES))}",
            )
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, dict):
            check.add(key, spec, "must be a path or a table with `path`")
            continue
        check.known_keys(spec, key, INPUT_KEYS)
        relative = check.required_text(spec, f"{key}.path", "path")
        file_path = (base / relative).resolve()
        suffix = file_path.suffix.lower()
        fmt = check.text(spec, f"{key}.format", "format", INPUT_FORMATS.get(suffix))
        if fmt not in INPUT_FORMATS.values():
            check.add(f"{key}.format", fmt, "set one of csv, parquet, json, jsonl")
            continue
        inputs.append(InputSpec(name=name, path=file_path, format=fmt))  # type: ignore[arg-type]
    return tuple(inputs)


def _read_items(check: _Checker, data: dict[str, Any]) -> ItemsSpec:
    table = check.table(data, "items", "items")
    check.known_keys(table, "items", ITEMS_KEYS)
    query = check.required_text(table, "items.query", "query")
    key = check.names(table, "items.key", "key")
    if not key:
        check.add(
            "items.key", None, "list the columns that identify an item, e.g. ['id']"
        )
    return ItemsSpec(query=query, key=key)


def _read_provider(check: _Checker, table: dict[str, Any]) -> ProviderSpec:
    check.known_keys(
        table, "provider", PROVIDER_KEYS, reported_elsewhere=frozenset({"api_key"})
    )
    base_url = check.text(
        table, "provider.base_url", "base_url", "https://api.openai.com/v1"
    )
    if base_url and not re.match(r"^https?://", base_url):
        check.add("provider.base_url", base_url, "must start with http:// or https://")
    key_env = check.text(table, "provider.api_key_env", "api_key_env", "OPENAI_API_KEY")
    if key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        check.add(
            "provider.api_key_env",
            "(hidden)",
            "must be the NAME of an environment variable, never the key itself",
        )
    if "api_key" in table:
        check.add(
            "provider.api_key",
            "(hidden)",
            "keys do not belong in the job file; "
            "set api_key_env to the name of an environment variable",
        )
    batch_table = check.table(table, "provider.batch", "batch")
    check.known_keys(batch_table, "provider.batch", BATCH_KEYS)
    batch = BatchLimits(
        max_lines=check.number(
            batch_table,
            "provider.batch.max_lines",
            "max_lines",
            50_000,
            unit="lines",
            integer=True,
        ),
        max_bytes=check.number(
            batch_table,
            "provider.batch.max_bytes",
            "max_bytes",
            200_000_000,
            unit="bytes",
            integer=True,
        ),
        max_enqueued_tokens=check.number(
            batch_table,
            "provider.batch.max_enqueued_tokens",
            "max_enqueued_tokens",
            None,
            unit="tokens",
            integer=True,
        ),
        completion_window=check.text(
            batch_table, "provider.batch.completion_window", "completion_window", "24h"
        )
        or "24h",
        poll_interval=check.number(
            batch_table,
            "provider.batch.poll_interval",
            "poll_interval",
            30.0,
            unit="seconds",
        ),
    )
    return ProviderSpec(
        name=check.text(table, "provider.name", "name", "openai") or "openai",
        base_url=(base_url or "").rstrip("/"),
        api_key_env=key_env or "",
        model=check.text(table, "provider.model", "model") or "",
        rpm=check.number(
            table, "provider.rpm", "rpm", 60, unit="requests per minute", integer=True
        ),
        tpm=check.number(
            table, "provider.tpm", "tpm", None, unit="tokens per minute", integer=True
        ),
        concurrency=check.number(
            table,
            "provider.concurrency",
            "concurrency",
            16,
            unit="requests in flight",
            integer=True,
        ),
        connect_timeout=check.number(
            table, "provider.connect_timeout", "connect_timeout", 10.0, unit="seconds"
        ),
        read_timeout=check.number(
            table, "provider.read_timeout", "read_timeout", 120.0, unit="seconds"
        ),
        deadline=check.number(
            table, "provider.deadline", "deadline", 600.0, unit="seconds"
        ),
        max_attempts=check.number(
            table,
            "provider.max_attempts",
            "max_attempts",
            5,
            unit="attempts",
            integer=True,
        ),
        batch=batch,
    )


def _read_message(
    check: _Checker, spec: Any, key: str, base: Path
) -> MessageSpec | None:
    if not isinstance(spec, dict):
        check.add(key, spec, "must be a table with `role` and `file` or `text`")
        return None
    check.known_keys(spec, key, MESSAGE_KEYS)
    role = check.required_text(spec, f"{key}.role", "role")
    if role and role not in ROLES:
        check.add(f"{key}.role", role, f"must be one of {', '.join(sorted(ROLES))}")
    file_name = check.text(spec, f"{key}.file", "file")
    text = spec.get("text")
    if (file_name is None) == (text is None):
        check.add(
            key, spec, "set exactly one of `file` (a Jinja2 template file) or `text`"
        )
        return None
    if text is not None:
        if not isinstance(text, str):
            check.add(f"{key}.text", text, "must be a string")
            return None
        return MessageSpec(role=role, template=text, origin=f"{check.path}: {key}.text")
    template_path = (base / str(file_name)).resolve()
    try:
        source = template_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        check.add(
            f"{key}.file", file_name, f"template file not found at {template_path}"
        )
        return None
    except UnicodeDecodeError:
        check.add(
            f"{key}.file", file_name, "template file is not UTF-8; save it as UTF-8"
        )
        return None
    return MessageSpec(role=role, template=source, origin=str(template_path))


def _read_validation(
    check: _Checker, table: dict[str, Any], key: str
) -> ValidationRules:
    check.known_keys(table, key, VALIDATE_KEYS)
    language = check.text(table, f"{key}.language", "language")
    if language not in (None, "en", "zh"):
        check.add(f"{key}.language", language, "must be 'en' or 'zh'")
        language = None
    finish = table.get("finish_reason", "stop")
    if finish is not None and finish is not False and not isinstance(finish, str):
        check.add(
            f"{key}.finish_reason", finish, "must be a string such as 'stop', or false"
        )
    forbidden = check.names(table, f"{key}.forbidden", "forbidden")
    share = check.number(
        table,
        f"{key}.min_language_share",
        "min_language_share",
        0.5,
        unit="letters (a share from 0 to 1)",
    )
    if share is not None and share > 1:
        check.add(f"{key}.min_language_share", share, "must be between 0 and 1")
    rules = ValidationRules(
        enabled=bool(table.get("enabled", True)),
        finish_reason=finish if isinstance(finish, str) else None,
        min_chars=check.number(
            table,
            f"{key}.min_chars",
            "min_chars",
            None,
            unit="characters",
            integer=True,
            allow_zero=True,
        ),
        max_chars=check.number(
            table,
            f"{key}.max_chars",
            "max_chars",
            None,
            unit="characters",
            integer=True,
        ),
        language=language,  # type: ignore[arg-type]
        min_language_share=share,
        min_headings=check.number(
            table,
            f"{key}.min_headings",
            "min_headings",
            None,
            unit="headings",
            integer=True,
            allow_zero=True,
        ),
        same_headings_as_source=bool(table.get("same_headings_as_source", False)),
        heading_tolerance=check.number(
            table,
            f"{key}.heading_tolerance",
            "heading_tolerance",
            1,
            unit="headings",
            integer=True,
            allow_zero=True,
        ),
        forbidden=forbidden,
        sql=check.text(table, f"{key}.sql", "sql"),
    )
    if rules.min_chars and rules.max_chars and rules.min_chars > rules.max_chars:
        check.add(f"{key}.min_chars", rules.min_chars, "is larger than max_chars")
    return rules


def _read_stages(
    check: _Checker, data: dict[str, Any], base: Path, provider: ProviderSpec
) -> tuple[StageSpec, ...]:
    raw = data.get("stages", [])
    if not isinstance(raw, list) or not raw:
        check.add("stages", None, "at least one [[stages]] table is required")
        return ()
    stages: list[StageSpec] = []
    for index, table in enumerate(raw):
        key = f"stages[{index}]"
        if not isinstance(table, dict):
            check.add(key, table, "must be a table")
            continue
        check.known_keys(table, key, STAGE_KEYS)
        name = check.required_text(table, f"{key}.name", "name")
        if name and not NAME_PATTERN.match(name):
            check.add(f"{key}.name", name, "use a letter then letters, digits or '_'")
        messages_raw = table.get("messages", [])
        if not isinstance(messages_raw, list) or not messages_raw:
            check.add(
                f"{key}.messages",
                None,
                "list at least one message, e.g. "
                "messages = [{ role = 'user', file = 'prompts/user.j2' }]",
            )
            messages_raw = []
        messages = [
            _read_message(check, spec, f"{key}.messages[{i}]", base)
            for i, spec in enumerate(messages_raw)
        ]
        model = check.text(table, f"{key}.model", "model", provider.model or None)
        if not model:
            check.add(f"{key}.model", None, "set provider.model or the stage's model")
        extra = table.get("extra_body", {})
        if not isinstance(extra, dict):
            check.add(f"{key}.extra_body", extra, "must be a table of body fields")
            extra = {}
        stages.append(
            StageSpec(
                name=name,
                messages=tuple(m for m in messages if m is not None),
                model=model or "",
                max_tokens=check.number(
                    table,
                    f"{key}.max_tokens",
                    "max_tokens",
                    1024,
                    unit="tokens",
                    integer=True,
                ),
                temperature=check.number(
                    table,
                    f"{key}.temperature",
                    "temperature",
                    None,
                    unit="temperature",
                    allow_zero=True,
                ),
                top_p=check.number(
                    table,
                    f"{key}.top_p",
                    "top_p",
                    None,
                    unit="probability mass",
                    allow_zero=True,
                ),
                extra_body=extra,
                depends_on=check.text(table, f"{key}.depends_on", "depends_on"),
                when=check.text(table, f"{key}.when", "when"),
                max_attempts=check.number(
                    table,
                    f"{key}.max_attempts",
                    "max_attempts",
                    provider.max_attempts,
                    unit="attempts",
                    integer=True,
                ),
                validation=_read_validation(
                    check,
                    check.table(table, f"{key}.validate", "validate"),
                    f"{key}.validate",
                ),
            )
        )
    _check_dependencies(check, stages)
    return tuple(stages)


def _check_dependencies(check: _Checker, stages: list[StageSpec]) -> None:
    names = [stage.name for stage in stages]
    listed = ", ".join(names)
    for index, stage in enumerate(stages):
        if names.count(stage.name) > 1 and names.index(stage.name) != index:
            check.add(
                f"stages[{index}].name", stage.name, "another stage has this name"
            )
        if stage.depends_on is not None and stage.depends_on not in names:
            check.add(
                f"stages[{index}].depends_on",
                stage.depends_on,
                f"no stage of that name; stages are {listed}",
            )
    by_name = {stage.name: stage for stage in stages}
    for index, stage in enumerate(stages):
        seen = [stage.name]
        current = stage
        while current.depends_on is not None and current.depends_on in by_name:
            if current.depends_on in seen:
                cycle = " -> ".join([*seen, current.depends_on])
                check.add(
                    f"stages[{index}].depends_on",
                    stage.depends_on,
                    f"dependency cycle {cycle}; a stage may depend only on a "
                    "stage that does not depend on it",
                )
                break
            seen.append(current.depends_on)
            current = by_name[current.depends_on]


def _parse_since(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _parse_time(value: Any) -> time | None:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            return None
    return None


def _read_prices(check: _Checker, data: dict[str, Any]) -> tuple[PriceEntry, ...]:
    raw = data.get("prices", [])
    if not isinstance(raw, list):
        check.add("prices", raw, "must be an array of [[prices]] tables")
        return ()
    entries = []
    for index, table in enumerate(raw):
        key = f"prices[{index}]"
        if not isinstance(table, dict):
            check.add(key, table, "must be a table with model, since and prices")
            continue
        check.known_keys(table, key, PRICE_KEYS)
        since = _parse_since(table.get("since"))
        if since is None:
            check.add(
                f"{key}.since",
                table.get("since"),
                "must be a date or UTC date-time such as 2025-09-05",
            )
            continue
        windows = []
        windows_raw = table.get("windows", [])
        if not isinstance(windows_raw, list):
            check.add(
                f"{key}.windows",
                windows_raw,
                "must be a list of tables such as "
                "[{ start = '16:30', end = '00:30', factor = 0.25 }]",
            )
            windows_raw = []
        for w_index, window in enumerate(windows_raw):
            w_key = f"{key}.windows[{w_index}]"
            if not isinstance(window, dict):
                check.add(w_key, window, "must be a table with start, end and factor")
                continue
            check.known_keys(window, w_key, WINDOW_KEYS)
            start, end = (
                _parse_time(window.get("start")),
                _parse_time(window.get("end")),
            )
            if start is None or end is None:
                check.add(
                    w_key, window, "start and end must be UTC times such as '16:30'"
                )
                continue
            factor = check.number(
                window,
                f"{w_key}.factor",
                "factor",
                None,
                unit="price multiplier",
                allow_zero=True,
            )
            windows.append(PriceWindow(start=start, end=end, factor=factor or 0.0))
        entries.append(
            PriceEntry(
                model=check.required_text(table, f"{key}.model", "model"),
                since=since,
                input_miss=check.number(
                    table,
                    f"{key}.input_miss",
                    "input_miss",
                    0.0,
                    unit="USD per million tokens",
                    allow_zero=True,
                ),
                input_hit=check.number(
                    table,
                    f"{key}.input_hit",
                    "input_hit",
                    0.0,
                    unit="USD per million tokens",
                    allow_zero=True,
                ),
                output=check.number(
                    table,
                    f"{key}.output",
                    "output",
                    0.0,
                    unit="USD per million tokens",
                    allow_zero=True,
                ),
                batch_factor=check.number(
                    table,
                    f"{key}.batch_factor",
                    "batch_factor",
                    0.5,
                    unit="price multiplier",
                    allow_zero=True,
                ),
                windows=tuple(windows),
            )
        )
    return tuple(sorted(entries, key=lambda entry: (entry.model, entry.since)))


def _read_load(
    check: _Checker, table: dict[str, Any], stages: tuple[StageSpec, ...]
) -> LoadSpec:
    check.known_keys(table, "load", LOAD_KEYS)
    target = check.text(table, "load.target", "target")
    if target not in (None, "postgres", "rest", "parquet"):
        check.add(
            "load.target",
            target,
            "must be postgres, rest or parquet "
            "(or unset: postgres when the database URL variable is set)",
        )
        target = None
    layout = check.text(table, "load.layout", "layout", "long")
    if layout not in ("long", "wide"):
        check.add("load.layout", layout, "must be 'long' or 'wide'")
        layout = "long"
    columns = table.get("columns", {})
    names = {stage.name for stage in stages}
    if not isinstance(columns, dict):
        check.add("load.columns", columns, "must map stage names to column names")
        columns = {}
    for stage_name in columns:
        if stage_name not in names:
            check.add(
                f"load.columns.{stage_name}",
                columns[stage_name],
                f"no stage of that name; stages are {', '.join(sorted(names))}",
            )
    table_name = check.text(table, "load.table", "table", "batchkit_results") or ""
    if not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", table_name
    ):
        check.add(
            "load.table", table_name, "must be a table name, optionally schema.table"
        )
    return LoadSpec(
        target=target,  # type: ignore[arg-type]
        database_url_env=check.text(
            table, "load.database_url_env", "database_url_env", "SUPABASE_DB_URL"
        )
        or "",
        supabase_url_env=check.text(
            table, "load.supabase_url_env", "supabase_url_env", "SUPABASE_URL"
        )
        or "",
        supabase_key_env=check.text(
            table, "load.supabase_key_env", "supabase_key_env", "SUPABASE_SERVICE_KEY"
        )
        or "",
        table=table_name,
        layout=layout,  # type: ignore[arg-type]
        key=check.names(table, "load.key", "key"),
        columns={str(k): str(v) for k, v in columns.items()},
        item_columns=check.names(table, "load.item_columns", "item_columns"),
        chunk_rows=check.number(
            table, "load.chunk_rows", "chunk_rows", 500, unit="rows", integer=True
        ),
        chunk_bytes=check.number(
            table,
            "load.chunk_bytes",
            "chunk_bytes",
            8_000_000,
            unit="bytes",
            integer=True,
        ),
    )
