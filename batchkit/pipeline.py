"""`batchkit run`: prepare and execute in rounds until nothing changes, then load.

A dependent stage renders only from its dependency's valid results, so a job
with dependencies needs prepare → execute → prepare → execute …; each round
renders what the last one made possible.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from batchkit.execute.select import Selection
from batchkit.execute.stream import StreamOptions, StreamSummary, run_stream
from batchkit.job.model import Job
from batchkit.load.run import LoadSummary, load_results
from batchkit.prepare.run import PrepareSummary, prepare_job

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROUNDS = 10

# Called with a short line before each phase of each round.
AnnounceCallback = Callable[[str], None]
# Runs one execute round; the CLI passes one that shows progress.
ExecuteRound = Callable[[Job, Selection], StreamSummary]


@dataclass
class RoundSummary:
    """One prepare and the execute that followed it."""

    number: int
    rendered: int  # new and changed requests
    prepare: PrepareSummary
    execute: StreamSummary | None


@dataclass
class PipelineSummary:
    """Every round of one `batchkit run`, and the load at the end."""

    rounds: list[RoundSummary] = field(default_factory=list)
    load: LoadSummary | None = None
    stop_reason: str | None = None  # why the loop ended early, if it did


def _rendered(summary: PrepareSummary) -> int:
    return sum(counts.added + counts.changed for counts in summary.stages.values())


def run_pipeline(
    job: Job,
    *,
    options: StreamOptions | None = None,
    execute: ExecuteRound | None = None,
    announce: AnnounceCallback | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    load: bool = True,
) -> PipelineSummary:
    """Loop prepare → execute until a round renders and sends nothing, then load.

    `execute` runs one round (default: `run_stream` with `options`, silent).
    """
    say = announce or (lambda text: None)
    execute = execute or (lambda job, selection: run_stream(job, selection, options))
    summary = PipelineSummary()
    for number in range(1, max_rounds + 1):
        say(f"round {number}: prepare")
        prepared = prepare_job(job)
        rendered = _rendered(prepared)
        say(
            f"round {number}: execute every pending request (this prepare "
            f"added or changed {rendered:,})"
        )
        executed = execute(job, Selection())
        summary.rounds.append(RoundSummary(number, rendered, prepared, executed))
        logger.info(
            "round %s: %s rendered, %s selected, %s ok",
            number,
            rendered,
            executed.selected,
            executed.ok,
        )
        if executed.stop_reason is not None:
            summary.stop_reason = f"execute stopped: {executed.stop_message}"
            return summary
        if executed.selected == 0 and rendered == 0:
            break
        if executed.ok == 0 and rendered == 0:
            summary.stop_reason = (
                "a round sent requests but none succeeded; see "
                "`batchkit status` and the failures view"
            )
            break
    else:
        summary.stop_reason = f"stopped after {max_rounds} rounds; run it again"
    if load:
        say("load")
        summary.load = load_results(job)
    return summary
