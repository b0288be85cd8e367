"""Analysis views: per-request status, progress, failures, rejects, costs, latency.

They build on the core views (`attempts`, `requests`, `results`) and live in
the job database, so the plain `duckdb` shell can query them too. Times are bucketed
with epoch arithmetic instead of time-zone functions, so every day and minute
is a UTC one whatever the session's TimeZone setting.
"""

from batchkit.job.model import Job

MICROSECONDS_PER_DAY = 86_400_000_000
MICROSECONDS_PER_MINUTE = 60_000_000

# The type `from_json` gives the `windows` column of the `prices` table.
WINDOWS_TYPE = '[{"start": "TIME", "end": "TIME", "factor": "DOUBLE"}]'

# Provider batch statuses after which nothing more changes.
TERMINAL_BATCH_STATUSES = ("completed", "failed", "expired", "cancelled")

# Error types that do not count against a stage's max_attempts, because the
# provider did no work; execute's retry policy uses the same set.
UNCOUNTED_ERRORS = ("rate_limit", "cancelled")


def utc_day(column: str) -> str:
    """Return SQL for the UTC date of the TIMESTAMPTZ `column`."""
    return (
        f"(DATE '1970-01-01' + "
        f"CAST(epoch_us({column}) // {MICROSECONDS_PER_DAY} AS INTEGER))"
    )


def utc_time_of_day(column: str) -> str:
    """Return SQL for the UTC time of day of the TIMESTAMPTZ `column`."""
    return (
        "(TIME '00:00:00' + "
        f"to_microseconds(epoch_us({column}) % {MICROSECONDS_PER_DAY}))"
    )


def _attempt_costs() -> str:
    # The price entry is the latest `since <= started_at` of the requested
    # model, found with an ASOF join. The first window that contains the time
    # of day sets the factor, as in batchkit.job.prices.window_factor.
    in_window = (
        'CASE WHEN w.start <= w."end" THEN tod >= w.start AND tod < w."end" '
        'ELSE tod >= w.start OR tod < w."end" END'
    )
    return f"""
    CREATE OR REPLACE VIEW attempt_costs AS
    WITH priced AS (
        SELECT a.attempt_id, a.custom_id, a.request_hash, a.stage, a.item_key,
               coalesce(rv.model, a.model) AS model, a.mode, a.status,
               a.started_at, {utc_day("a.started_at")} AS day,
               {utc_time_of_day("a.started_at")} AS tod,
               coalesce(a.prompt_tokens, 0) AS prompt_tokens,
               coalesce(a.cache_miss_tokens, 0) AS cache_miss_tokens,
               coalesce(a.cache_hit_tokens, 0) AS cache_hit_tokens,
               coalesce(a.completion_tokens, 0) AS completion_tokens,
               coalesce(a.reasoning_tokens, 0) AS reasoning_tokens,
               a.cost_usd
        FROM attempts a
        LEFT JOIN request_versions rv
          ON rv.custom_id = a.custom_id AND rv.request_hash = a.request_hash
    ), matched AS (
        SELECT priced.*, p.since AS price_since, p.input_miss, p.input_hit,
               p.output, p.batch_factor,
               from_json(p.windows, '{WINDOWS_TYPE}') AS windows
        FROM priced
        ASOF LEFT JOIN prices p
          ON p.model = priced.model AND priced.started_at >= p.since
    ), factored AS (
        SELECT * EXCLUDE (windows, tod),
               coalesce(
                   list_filter(windows, lambda w: {in_window})[1].factor, 1.0
               ) AS window_factor,
               CASE WHEN mode = 'batch' THEN batch_factor ELSE 1.0 END
                   AS mode_factor
        FROM matched
    )
    SELECT attempt_id, custom_id, request_hash, stage, item_key, model, mode,
           status, started_at, day, prompt_tokens, cache_miss_tokens,
           cache_hit_tokens, completion_tokens, reasoning_tokens,
           cost_usd, price_since, window_factor, mode_factor,
           (cache_miss_tokens * input_miss + cache_hit_tokens * input_hit
            + completion_tokens * output) / 1e6 * window_factor * mode_factor
               AS cost_recomputed_usd
    FROM factored
    """


def _costs() -> str:
    return """
    CREATE OR REPLACE VIEW costs AS
    SELECT stage, model, day,
           count(*) AS attempts,
           count(*) FILTER (WHERE status = 'ok') AS ok_attempts,
           count(*) FILTER (WHERE status <> 'ok') AS failed_attempts,
           sum(cache_miss_tokens) AS cache_miss_tokens,
           sum(cache_hit_tokens) AS cache_hit_tokens,
           sum(completion_tokens) AS output_tokens,
           sum(reasoning_tokens) AS reasoning_tokens,
           coalesce(sum(cost_usd), 0) AS cost_usd,
           coalesce(sum(cost_recomputed_usd), 0) AS cost_recomputed_usd,
           count(*) FILTER (WHERE price_since IS NULL) AS unpriced_attempts
    FROM attempt_costs
    GROUP BY ALL
    ORDER BY day, stage, model
    """


def _uncounted_list() -> str:
    return ", ".join(f"'{name}'" for name in UNCOUNTED_ERRORS)


def _request_status() -> str:
    # Each current request gets exactly one status, checked in this order:
    # - pending: no attempt of the current version;
    # - failed: attempts, but none is ok;
    # - rejected: the newest ok attempt fails the stage's current rules;
    # - loaded: it passes, and the load ledger contains that attempt;
    # - ok: it passes but is not loaded, or is not checked yet (is_unchecked).
    return f"""
    CREATE OR REPLACE VIEW request_status AS
    WITH tried AS (
        SELECT a.custom_id,
               count(*) AS attempts,
               count(*) FILTER (
                   WHERE coalesce(a.error_type, '') NOT IN ({_uncounted_list()})
               ) AS counted_attempts,
               count(*) FILTER (WHERE a.status = 'ok') AS ok_attempts,
               max(a.finished_at) AS last_finished_at,
               arg_max(a.status, a.finished_at) AS last_status,
               arg_max(a.error_type, a.finished_at) AS last_error_type,
               arg_max(a.error_message, a.finished_at) AS last_error_message,
               arg_max(a.http_status, a.finished_at) AS last_http_status
        FROM attempts a
        JOIN requests r
          ON r.custom_id = a.custom_id AND r.request_hash = a.request_hash
        GROUP BY a.custom_id
    ), loaded AS (
        SELECT DISTINCT attempt_id FROM load_ledger
    )
    SELECT r.custom_id, r.request_hash, r.stage, r.item_key,
           CASE
               WHEN t.custom_id IS NULL THEN 'pending'
               WHEN t.ok_attempts = 0 THEN 'failed'
               WHEN v.attempt_id IS NOT NULL AND NOT v.is_valid THEN 'rejected'
               WHEN v.is_valid AND l.attempt_id IS NOT NULL THEN 'loaded'
               ELSE 'ok'
           END AS status,
           (res.attempt_id IS NOT NULL AND v.attempt_id IS NULL) AS is_unchecked,
           coalesce(t.attempts, 0) AS attempts,
           coalesce(t.counted_attempts, 0) AS counted_attempts,
           s.max_attempts,
           t.last_finished_at, t.last_status, t.last_error_type,
           t.last_error_message, t.last_http_status,
           res.attempt_id AS result_attempt_id, v.reasons
    FROM requests r
    LEFT JOIN tried t ON t.custom_id = r.custom_id
    LEFT JOIN results res ON res.custom_id = r.custom_id
    LEFT JOIN stages s ON s.stage = r.stage
    LEFT JOIN verdicts v
      ON v.attempt_id = res.attempt_id AND v.rules_hash = s.rules_hash
    LEFT JOIN loaded l ON l.attempt_id = res.attempt_id
    """


def _progress() -> str:
    return """
    CREATE OR REPLACE VIEW progress AS
    SELECT r.stage,
           count(*) AS total,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'ok') AS ok,
           count(*) FILTER (WHERE status = 'rejected') AS rejected,
           count(*) FILTER (WHERE status = 'loaded') AS loaded,
           count(*) FILTER (WHERE is_unchecked) AS unchecked
    FROM request_status r
    LEFT JOIN stages s ON s.stage = r.stage
    GROUP BY r.stage, s.position
    ORDER BY s.position NULLS LAST, r.stage
    """


def _failures() -> str:
    return """
    CREATE OR REPLACE VIEW failures AS
    SELECT custom_id, request_hash, stage, item_key, attempts, counted_attempts,
           max_attempts, counted_attempts >= max_attempts AS is_exhausted,
           last_error_type AS error_type, last_error_message AS error_message,
           last_http_status AS http_status, last_finished_at
    FROM request_status
    WHERE status = 'failed'
    """


def _rejects() -> str:
    return """
    CREATE OR REPLACE VIEW rejects AS
    SELECT r.custom_id, r.request_hash, r.stage, r.item_key, r.attempt_id,
           split_part(reason, ':', 1) AS reason_name,
           trim(substr(reason, length(split_part(reason, ':', 1)) + 2)) AS detail,
           reason, v.checked_at, r.finish_reason,
           length(r.content) AS content_chars, r.completion_tokens, r.content
    FROM results r
    JOIN stages s ON s.stage = r.stage
    JOIN verdicts v ON v.attempt_id = r.attempt_id AND v.rules_hash = s.rules_hash,
    unnest(v.reasons) AS u(reason)
    WHERE NOT v.is_valid
    """


def _latency() -> str:
    return """
    CREATE OR REPLACE VIEW latency AS
    SELECT stage,
           count(*) AS ok_attempts,
           quantile_cont(latency_ms, 0.5) AS p50_ms,
           quantile_cont(latency_ms, 0.95) AS p95_ms,
           quantile_cont(latency_ms, 0.99) AS p99_ms,
           avg(latency_ms) AS mean_ms,
           max(latency_ms) AS max_ms
    FROM attempts
    WHERE status = 'ok' AND latency_ms IS NOT NULL
    GROUP BY stage
    ORDER BY stage
    """


def _retries() -> list[str]:
    # attempts_until_success is the `attempt` number of the first ok attempt of
    # the current request version; NULL while none succeeded.
    per_request = """
    CREATE OR REPLACE VIEW retries AS
    SELECT a.custom_id, a.request_hash, a.stage, a.item_key,
           count(*) AS attempts,
           count(*) FILTER (WHERE a.status <> 'ok') AS failed_attempts,
           min(a.attempt) FILTER (WHERE a.status = 'ok') AS attempts_until_success
    FROM attempts a
    JOIN requests r ON r.custom_id = a.custom_id AND r.request_hash = a.request_hash
    GROUP BY ALL
    """
    distribution = """
    CREATE OR REPLACE VIEW retry_distribution AS
    SELECT stage, attempts_until_success, count(*) AS requests,
           count(*) / sum(count(*)) OVER (PARTITION BY stage) AS share
    FROM retries
    GROUP BY stage, attempts_until_success
    ORDER BY stage, attempts_until_success NULLS LAST
    """
    return [per_request, distribution]


def _throughput() -> str:
    return f"""
    CREATE OR REPLACE VIEW throughput AS
    SELECT to_timestamp(epoch_us(finished_at) // {MICROSECONDS_PER_MINUTE} * 60)
               AS minute,
           stage,
           count(*) AS attempts,
           count(*) FILTER (WHERE status = 'ok') AS ok_attempts,
           count(*) FILTER (WHERE status <> 'ok') AS failed_attempts,
           coalesce(sum(completion_tokens), 0) AS output_tokens
    FROM attempts
    WHERE finished_at IS NOT NULL
    GROUP BY minute, stage
    ORDER BY minute, stage
    """


def _estimate_vs_actual() -> str:
    # The estimate is prepare's maximum: no cache hits, every response at
    # max_tokens. The actual side counts every attempt of the stage, retries
    # and superseded request versions included, because all of them were paid.
    return """
    CREATE OR REPLACE VIEW estimate_vs_actual AS
    WITH latest AS (
        SELECT * FROM estimates
        QUALIFY row_number() OVER (PARTITION BY stage ORDER BY prepared_at DESC) = 1
    ), actual AS (
        SELECT stage, count(*) AS attempts,
               sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS output_tokens,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               coalesce(sum(cost_recomputed_usd), 0) AS cost_recomputed_usd
        FROM attempt_costs
        GROUP BY stage
    )
    SELECT coalesce(l.stage, a.stage) AS stage,
           l.prepared_at AS estimated_at,
           l.requests AS estimated_requests,
           l.prompt_tokens AS estimated_prompt_tokens,
           l.max_completion_tokens AS estimated_max_output_tokens,
           l.cost_usd AS estimated_max_cost_usd,
           coalesce(a.attempts, 0) AS attempts,
           coalesce(a.prompt_tokens, 0) AS prompt_tokens,
           coalesce(a.output_tokens, 0) AS output_tokens,
           coalesce(a.cost_usd, 0) AS cost_usd,
           coalesce(a.cost_recomputed_usd, 0) AS cost_recomputed_usd,
           coalesce(a.cost_usd, 0) / nullif(l.cost_usd, 0) AS spent_share
    FROM latest l
    FULL JOIN actual a ON a.stage = l.stage
    ORDER BY stage
    """


def analysis_views(job: Job) -> list[str]:
    """Return the CREATE VIEW statements of the analysis views, in dependency order."""
    del job  # the analysis views read only tables and the core views
    return [
        _attempt_costs(),
        _costs(),
        _request_status(),
        _progress(),
        _failures(),
        _rejects(),
        _latency(),
        *_retries(),
        _throughput(),
        _estimate_vs_actual(),
    ]
