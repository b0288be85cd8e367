"""Estimate tokens and cost per stage from the stored requests."""

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from batchkit.job.model import Job
from batchkit.job.prices import find_price, window_factor

# A dependent stage's prompt contains its dependency's output plus
# instructions. Before it is rendered, its prompt is projected as the
# dependency's max_tokens plus this many tokens of instructions.
PROJECTED_INSTRUCTION_TOKENS = 150


@dataclass(frozen=True)
class StageEstimate:
    """Estimated size and maximum cost of one stage's current requests."""

    stage: str
    requests: int
    prompt_tokens: int
    max_completion_tokens: int
    max_cost_usd: float | None  # every prompt at the cache-miss price, full max_tokens
    is_projected: bool  # some of a dependent stage's requests are not rendered yet


def _cost(job: Job, model: str, prompt: int, completion: int) -> float | None:
    now = datetime.now(UTC)
    entry = find_price(job.prices, model, now)
    if entry is None:
        return None
    usd = (prompt * entry.input_miss + completion * entry.output) / 1_000_000
    return usd * window_factor(entry, now)


def estimate_stages(
    connection: duckdb.DuckDBPyConnection, job: Job
) -> list[StageEstimate]:
    """Return one estimate per stage of the job, in the job's order.

    A dependent stage counts its rendered requests plus one projected request
    for each request of its dependency that it has no request for yet.
    """
    rows = connection.execute(
        """
        SELECT stage, count(*), sum(prompt_tokens_est), sum(max_tokens)
        FROM requests GROUP BY stage
        """
    ).fetchall()
    found = {row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0)) for row in rows}
    estimates: dict[str, StageEstimate] = {}
    for stage in job.stages:
        count, prompt, completion = found.get(stage.name, (0, 0, 0))
        projected = 0
        if stage.depends_on is not None and stage.depends_on in estimates:
            projected = max(estimates[stage.depends_on].requests - count, 0)
            source_tokens = job.stage(stage.depends_on).max_tokens
            prompt += projected * (source_tokens + PROJECTED_INSTRUCTION_TOKENS)
            completion += projected * stage.max_tokens
        estimates[stage.name] = StageEstimate(
            stage=stage.name,
            requests=count + projected,
            prompt_tokens=prompt,
            max_completion_tokens=completion,
            max_cost_usd=_cost(job, stage.model, prompt, completion),
            is_projected=projected > 0,
        )
    return list(estimates.values())


def record_estimates(
    connection: duckdb.DuckDBPyConnection, estimates: list[StageEstimate]
) -> None:
    """Append the estimates to the `estimates` table with the current time."""
    now = datetime.now(UTC)
    connection.executemany(
        "INSERT INTO estimates VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                now,
                e.stage,
                e.requests,
                e.prompt_tokens,
                e.max_completion_tokens,
                e.max_cost_usd,
            )
            for e in estimates
        ],
    )
