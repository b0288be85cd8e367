"""Fault choice for each request: prompt markers first, then the configured rates.

Marker syntax. A prompt may contain markers of the form `[[sim:KIND ARGS]]`:

    [[sim:500]]            every time: HTTP 500
    [[sim:500 x2]]         the first 2 times this same body arrives, then normal
    [[sim:drop x1]][[sim:503 x1]]
                           first a dropped connection, then a 503, then normal
    [[sim:ok x1]][[sim:hang]]
                           first normal, then hang every time after
    [[sim:pad 3s]]         blank lines (or SSE keep-alive comments) for 3 s
    [[sim:pad forever]]    blank lines until the client gives up
    [[sim:hang 2s]]        no response for 2 s, then the connection closes

KIND is one of 429, 500, 502, 503, drop, truncate, hang, length,
content_filter, empty, pad or ok. ARGS are `xN`, the number of arrivals the
marker covers (all the remaining ones without it). Pad and hang also take a
duration such as `250ms`, `3s`, `1.5s`, `2m` or `forever`. Markers take turns in the
order written: each one covers the next N arrivals of the same request body
that pass the rate caps. Durations are scaled by `time_scale`. Markers override
the random fault rates for that request.

Random faults are drawn from the seed, the body and its arrival count, so a
rerun with the same seed and the same requests fails the same way, whatever
the order the requests arrive in.
"""

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from batchkit.simulate.config import FAULT_KINDS

MARKER_KINDS = (*FAULT_KINDS, "pad", "ok")
MARKER_PREFIX = "[[sim:"

_MARKER = re.compile(r"\[\[sim:([^\]]*)\]\]")
_COUNT = re.compile(r"x(\d+)")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}
_UNIT_SCALE = 2.0**-64
_CONTENT_FAULTS = (None, "length", "content_filter", "empty")


class MarkerError(ValueError):
    """A `[[sim:...]]` marker in a prompt is malformed."""


@dataclass(frozen=True, slots=True)
class Marker:
    """One parsed `[[sim:...]]` marker."""

    kind: str
    count: int | None
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Plan:
    """The fault and padding chosen for one request.

    A duration of None means the configured one.
    """

    fault: str | None = None
    is_padded: bool = False
    pad_seconds: float | None = None
    hang_seconds: float | None = None
    source: str = "none"


NO_FAULT = Plan()


def parse_markers(prompt: str) -> list[Marker]:
    """Return the markers in `prompt`, in order; raise MarkerError if one is bad."""
    if MARKER_PREFIX not in prompt:
        return []
    return [_parse_marker(match.group(1)) for match in _MARKER.finditer(prompt)]


def _parse_marker(text: str) -> Marker:
    words = text.split()
    if not words or words[0] not in MARKER_KINDS:
        raise MarkerError(
            f"invalid marker [[sim:{text}]]: the kind must be one of "
            f"{', '.join(MARKER_KINDS)}"
        )
    kind, count, seconds = words[0], None, None
    for word in words[1:]:
        if match := _COUNT.fullmatch(word):
            count = int(match.group(1))
        elif word == "forever" and kind in ("pad", "hang"):
            seconds = math.inf
        elif (match := _DURATION.fullmatch(word)) and kind in ("pad", "hang"):
            seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
        else:
            raise MarkerError(
                f"invalid marker [[sim:{text}]]: {word!r} is neither a count (x2) "
                f"nor, for pad and hang, a duration (3s, 250ms, forever)"
            )
    return Marker(kind, count, seconds)


def draw_uniforms(seed: int, body_hash: str, arrival: int) -> tuple[float, ...]:
    """Return four uniform numbers in [0, 1) fixed by seed, body and arrival."""
    digest = hashlib.blake2b(
        f"{seed}:{body_hash}:{arrival}".encode(), digest_size=32
    ).digest()
    return tuple(
        int.from_bytes(digest[i : i + 8], "little") * _UNIT_SCALE
        for i in range(0, 32, 8)
    )


def plan_from_markers(markers: list[Marker], arrival: int) -> Plan:
    """Return the plan the markers set for the `arrival`-th arrival (from 1)."""
    start = 1
    for marker in markers:
        if marker.count is not None and arrival >= start + marker.count:
            start += marker.count
            continue
        if marker.kind == "ok":
            return Plan(source="marker")
        if marker.kind == "pad":
            return Plan(is_padded=True, pad_seconds=marker.seconds, source="marker")
        if marker.kind == "hang":
            return Plan(fault="hang", hang_seconds=marker.seconds, source="marker")
        return Plan(fault=marker.kind, source="marker")
    return Plan(source="marker")


def plan_from_rates(
    rates: Mapping[str, float], pad_rate: float, fault_draw: float, pad_draw: float
) -> Plan:
    """Return the plan the random draws pick under the configured rates."""
    fault = None
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += rates.get(kind, 0.0)
        if fault_draw < edge:
            fault = kind
            break
    # Padding comes before a 200 status line, so it only goes with content.
    is_padded = pad_draw < pad_rate and fault in _CONTENT_FAULTS
    if fault is None and not is_padded:
        return NO_FAULT
    return Plan(fault=fault, is_padded=is_padded, source="rate")
