"""The --max-cost budget: spent so far plus the worst case of what is in flight."""

from datetime import datetime

from batchkit.execute.errors import ExecuteError
from batchkit.job.model import Job
from batchkit.job.prices import attempt_cost


def worst_case_cost(
    job: Job, model: str, prompt_tokens: int, max_tokens: int, at: datetime
) -> float | None:
    """Return the cost of a request with no cache hits and max_tokens of output."""
    return attempt_cost(
        job.prices,
        model,
        at,
        cache_miss_tokens=prompt_tokens,
        cache_hit_tokens=0,
        completion_tokens=max_tokens,
    )


class Budget:
    """Tracks the spend against an optional limit in USD."""

    def __init__(self, limit_usd: float | None, spent_before_usd: float) -> None:
        self.limit = limit_usd
        self.spent_before = spent_before_usd  # earlier runs of this job
        self.spent = 0.0  # this run
        self.reserved = 0.0  # worst case of the requests in flight

    @property
    def total(self) -> float:
        """Return the spend of this job so far, earlier runs included."""
        return self.spent_before + self.spent

    def fits(self, worst_usd: float) -> bool:
        """Return whether a request costing at most `worst_usd` stays in budget."""
        if self.limit is None:
            return True
        return self.total + self.reserved + worst_usd <= self.limit

    def reserve(self, worst_usd: float) -> None:
        """Hold `worst_usd` for a request being sent."""
        self.reserved += worst_usd

    def settle(self, worst_usd: float, cost_usd: float | None) -> None:
        """Release a reservation and add what the attempt really cost."""
        self.reserved = max(0.0, self.reserved - worst_usd)
        self.spent += cost_usd or 0.0


def check_budget_prices(job: Job, models: set[str], at: datetime) -> None:
    """Raise ExecuteError if --max-cost is set but a model has no price."""
    for model in sorted(models):
        if worst_case_cost(job, model, 1, 1, at) is None:
            raise ExecuteError(
                f"--max-cost needs a price for model {model}, and {job.path} has "
                "none in force; add a [[prices]] entry for it or drop --max-cost"
            )
