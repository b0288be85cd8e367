"""The simulator's settings: one frozen dataclass, checked before the server starts.

Durations are seconds unless the name ends in `_ms`. `time_scale` multiplies
every simulated delay (latency, padding, hangs) so a demo runs fast, but not
the rate-limit window, which stays in real seconds because clients pace
themselves by the wall clock.
"""

import dataclasses
import ipaddress
import json
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from batchkit.simulate.errors import SimulatorConfigError

# Faults that `fault_rates` and the prompt markers can trigger.
FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "drop",
    "truncate",
    "hang",
    "length",
    "content_filter",
    "empty",
)

DEFAULT_MODELS = (
    "deepseek-chat",
    "deepseek-reasoner",
    "gpt-4o-mini",
    "gpt-4.1-mini",
)

MIB = 1024 * 1024

# Settings that only take effect at start, so POST /_sim/config rejects them.
STARTUP_ONLY = frozenset(
    {"host", "port", "allow_remote", "log_file", "log_max_entries"}
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of one simulator server; see docs/simulator.md for each one."""

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    api_key: str | None = "sk-simulator"
    seed: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    check_model: bool = False
    context_tokens: int = 131_072
    max_output_tokens: int = 65_536

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    window_seconds: float = 60.0
    retry_after: bool = True
    over_cap: Literal["reject", "pad"] = "reject"

    latency_ms: float = 0.0
    token_ms: float = 0.0
    latency_sigma: float = 0.5
    time_scale: float = 1.0

    pad_rate: float = 0.0
    pad_seconds: float = 10.0
    pad_forever: bool = False
    pad_interval: float = 1.0
    fault_rates: Mapping[str, float] = field(default_factory=dict)
    hang_seconds: float = 600.0

    default_chars: int = 1_500
    stream_chunk_tokens: int = 4

    batch_lines_per_second: float = 1_000.0
    batch_expire_after: int | None = None
    batch_fail_lines: tuple[str, ...] = ()
    batch_fail_code: str | None = None
    batch_drop_lines: tuple[str, ...] = ()
    batch_max_lines: int = 50_000
    batch_max_bytes: int = 200 * MIB
    batch_token_limit: int | None = None
    upload_max_bytes: int = 512 * MIB

    log_file: str | None = None
    log_max_entries: int = 200_000

    def replace(self, **changes: Any) -> "SimulatorConfig":
        """Return a checked copy with `changes` applied."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SimulatorConfigError(
                f"unknown simulator setting {', '.join(map(repr, unknown))}; "
                f"valid settings: {', '.join(setting_names())}"
            )
        coerced = _coerce(changes)
        _check_types(coerced)
        config = dataclasses.replace(self, **coerced)
        check_config(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values, with the API key masked."""
        values = dataclasses.asdict(self)
        values["fault_rates"] = dict(self.fault_rates)
        if self.api_key is not None:
            values["api_key"] = "***"
        return values


def setting_names() -> list[str]:
    """Return the names of every setting."""
    return [f.name for f in dataclasses.fields(SimulatorConfig)]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read settings from a JSON or TOML file into a dict of changes."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SimulatorConfigError(
            f"{path}: cannot read the config file: {error.strerror}"
        ) from error
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise SimulatorConfigError(f"{path}: invalid config file: {error}") from error
    if not isinstance(data, dict):
        raise SimulatorConfigError(f"{path}: the config file must hold one object")
    return data


def parse_fault_rate(text: str) -> tuple[str, float]:
    """Parse `KIND=RATE` (for example `500=0.02`) into a fault kind and a rate."""
    kind, separator, rate_text = text.partition("=")
    if not separator:
        raise SimulatorConfigError(
            f"fault rate {text!r} must look like KIND=RATE, for example 500=0.02"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise SimulatorConfigError(
            f"fault rate {text!r}: {rate_text!r} is not a number between 0 and 1"
        ) from None
    return kind.strip(), rate


def check_config(config: SimulatorConfig) -> None:
    """Raise SimulatorConfigError naming the first invalid setting of `config`."""
    _check_host(config.host, config.allow_remote)
    if not 0 <= config.port <= 65_535:
        _fail("port", config.port, "must be 0 (any free port) to 65535")

    for name in ("rpm", "tpm", "concurrency", "batch_expire_after"):
        value = getattr(config, name)
        if value is not None and value < 1:
            _fail(name, value, "must be a positive integer, or unset for no cap")
    if config.batch_token_limit is not None and config.batch_token_limit < 1:
        _fail("batch_token_limit", config.batch_token_limit, "must be positive")

    for name in (
        "context_tokens",
        "max_output_tokens",
        "default_chars",
        "stream_chunk_tokens",
        "batch_max_lines",
        "batch_max_bytes",
        "upload_max_bytes",
        "log_max_entries",
    ):
        if getattr(config, name) < 1:
            _fail(name, getattr(config, name), "must be a positive integer")
    for name in ("window_seconds", "time_scale", "batch_lines_per_second"):
        if getattr(config, name) <= 0:
            _fail(name, getattr(config, name), "must be a positive number")
    for name in (
        "latency_ms",
        "token_ms",
        "latency_sigma",
        "pad_seconds",
        "hang_seconds",
    ):
        if getattr(config, name) < 0:
            _fail(name, getattr(config, name), "must be zero or positive")

    if config.pad_interval <= 0:
        _fail("pad_interval", config.pad_interval, "must be a positive number")
    if config.over_cap not in ("reject", "pad"):
        _fail("over_cap", config.over_cap, "must be 'reject' (429) or 'pad'")
    if not 0 <= config.pad_rate <= 1:
        _fail("pad_rate", config.pad_rate, "must be a fraction between 0 and 1")

    _check_fault_rates(config.fault_rates)
    for name in ("models", "batch_fail_lines", "batch_drop_lines"):
        if not all(isinstance(item, str) for item in getattr(config, name)):
            _fail(name, getattr(config, name), "must be a list of strings")


def _check_host(host: str, allow_remote: bool) -> None:
    if allow_remote or host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        _fail(
            "host",
            host,
            "is not a loopback address; use 127.0.0.1 or localhost, "
            "or allow other hosts explicitly (--allow-remote)",
        )


def _check_fault_rates(rates: Mapping[str, float]) -> None:
    for kind, rate in rates.items():
        if kind not in FAULT_KINDS:
            _fail(
                "fault_rates",
                kind,
                f"is not a fault kind; choose from {', '.join(FAULT_KINDS)}",
            )
        if not 0 <= rate <= 1:
            _fail(f"fault_rates[{kind}]", rate, "must be a fraction between 0 and 1")
    total = sum(rates.values())
    if total > 1:
        _fail("fault_rates", dict(rates), f"add up to {total:g}; the sum must be <= 1")


def _coerce(changes: Mapping[str, Any]) -> dict[str, Any]:
    # JSON has no tuples, so lists from /_sim/config or a file become tuples.
    coerced = dict(changes)
    for name in ("models", "batch_fail_lines", "batch_drop_lines"):
        if isinstance(coerced.get(name), list):
            coerced[name] = tuple(coerced[name])
    if "fault_rates" in coerced and isinstance(coerced["fault_rates"], Mapping):
        coerced["fault_rates"] = {
            str(kind): float(rate) for kind, rate in coerced["fault_rates"].items()
        }
    return coerced


def _check_types(changes: Mapping[str, Any]) -> None:
    types = {f.name: f.type for f in dataclasses.fields(SimulatorConfig)}
    for name, value in changes.items():
        expected = _accepted_types(types[name])
        is_bool_for_number = isinstance(value, bool) and bool not in expected
        if not isinstance(value, expected) or is_bool_for_number:
            names = " or ".join(sorted(_type_name(t) for t in expected))
            _fail(name, value, f"has the wrong type; expected {names}")


def _type_name(kind: type) -> str:
    return "null" if kind is type(None) else kind.__name__


def _accepted_types(annotation: Any) -> tuple[type, ...]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return tuple({type(arg) for arg in args})
    if not args or typing.get_origin(annotation) in (tuple, Mapping):
        origin = typing.get_origin(annotation) or annotation
        accepted: tuple[type, ...] = (dict,) if origin is Mapping else (origin,)
        return (*accepted, int) if origin is float else accepted
    accepted = ()
    for arg in args:
        accepted += _accepted_types(arg)
    return accepted


def _fail(name: str, value: object, problem: str) -> None:
    raise SimulatorConfigError(f"simulator setting {name} = {value!r} {problem}")
