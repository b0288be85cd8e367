"""The SQL views of the job database.

They live in the database file, so `duckdb runs/<job>/batchkit.duckdb` sees
them too. Every read-write open recreates them, because `attempts` names the
response log's folder by its absolute path.
"""

import duckdb

from batchkit.job.model import Job
from batchkit.store.analysis_views import analysis_views
from batchkit.store.responses import parts_glob


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def core_views(job: Job) -> list[str]:
    """Return the statements of the views every phase relies on."""
    glob = _sql_string(parts_glob(job.responses_dir))
    return [
        # Every attempt in the response log, one row each.
        f"""
        CREATE OR REPLACE VIEW attempts AS
        SELECT * FROM read_parquet({glob}, union_by_name = true)
        """,
        # The current version of every request.
        """
        CREATE OR REPLACE VIEW requests AS
        SELECT custom_id, request_hash, stage, item_key, model, line, line_bytes,
               prompt_tokens_est, max_tokens, source_attempt_id, created_at
        FROM request_versions
        WHERE superseded_at IS NULL
        """,
        # The newest successful attempt of each current request.
        """
        CREATE OR REPLACE VIEW results AS
        SELECT a.*
        FROM attempts a
        JOIN requests r
          ON r.custom_id = a.custom_id AND r.request_hash = a.request_hash
        WHERE a.status = 'ok'
        QUALIFY row_number() OVER (
            PARTITION BY a.custom_id ORDER BY a.finished_at DESC, a.attempt_id DESC
        ) = 1
        """,
        # Results that passed their stage's current checks.
        """
        CREATE OR REPLACE VIEW valid_results AS
        SELECT r.*
        FROM results r
        JOIN stages s ON s.stage = r.stage
        JOIN verdicts v ON v.attempt_id = r.attempt_id AND v.rules_hash = s.rules_hash
        WHERE v.is_valid
        """,
    ]


# Further views (rejects, failures, costs, progress, ...) register here.
EXTRA_VIEWS: list = [analysis_views]


def create_views(connection: duckdb.DuckDBPyConnection, job: Job) -> None:
    """Create or replace every view of the job database."""
    statements = core_views(job)
    for build in EXTRA_VIEWS:
        statements.extend(build(job))
    for statement in statements:
        connection.execute(statement)
