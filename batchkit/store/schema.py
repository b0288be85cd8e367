"""The tables of the job database.

Statuses (pending, ok, failed, rejected, loaded) are not stored: the views in
`batchkit.store.views` derive them from these tables and the response log.
"""

SCHEMA_VERSION = "1"

TABLES = [
    """
    CREATE TABLE IF NOT EXISTS batchkit_meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL
    )
    """,
    # One row per item ever prepared. `item` contains the item query's columns.
    """
    CREATE TABLE IF NOT EXISTS items (
        item_key VARCHAR PRIMARY KEY,
        item JSON NOT NULL,
        prepared_at TIMESTAMPTZ NOT NULL
    )
    """,
    # Every rendered version of every request. The current version of a
    # custom_id is the one with superseded_at NULL.
    """
    CREATE TABLE IF NOT EXISTS request_versions (
        custom_id VARCHAR NOT NULL,
        request_hash VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        item_key VARCHAR NOT NULL,
        model VARCHAR NOT NULL,
        line VARCHAR NOT NULL,
        line_bytes INTEGER NOT NULL,
        prompt_tokens_est INTEGER NOT NULL,
        max_tokens INTEGER NOT NULL,
        source_attempt_id VARCHAR,
        created_at TIMESTAMPTZ NOT NULL,
        superseded_at TIMESTAMPTZ,
        PRIMARY KEY (custom_id, request_hash)
    )
    """,
    # The job's stages as of the last command, so SQL views know the current
    # validation rules and dependencies.
    """
    CREATE TABLE IF NOT EXISTS stages (
        stage VARCHAR PRIMARY KEY,
        position INTEGER NOT NULL,
        depends_on VARCHAR,
        model VARCHAR NOT NULL,
        max_tokens INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        rules_hash VARCHAR NOT NULL,
        rules JSON NOT NULL
    )
    """,
    # Dated prices from the job file, rewritten by every command; the cost
    # views can recompute an attempt's cost from them.
    """
    CREATE TABLE IF NOT EXISTS prices (
        model VARCHAR NOT NULL,
        since TIMESTAMPTZ NOT NULL,
        input_miss DOUBLE NOT NULL,
        input_hit DOUBLE NOT NULL,
        output DOUBLE NOT NULL,
        batch_factor DOUBLE NOT NULL,
        windows JSON NOT NULL,
        PRIMARY KEY (model, since)
    )
    """,
    # The verdict of the stage's checks on one successful attempt, under one
    # version of the rules.
    """
    CREATE TABLE IF NOT EXISTS verdicts (
        attempt_id VARCHAR NOT NULL,
        rules_hash VARCHAR NOT NULL,
        custom_id VARCHAR NOT NULL,
        request_hash VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        item_key VARCHAR NOT NULL,
        is_valid BOOLEAN NOT NULL,
        reasons VARCHAR[] NOT NULL,
        checked_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (attempt_id, rules_hash)
    )
    """,
    # Provider batches created by `execute --mode batch`.
    """
    CREATE TABLE IF NOT EXISTS provider_batches (
        batch_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        input_file_id VARCHAR NOT NULL,
        output_file_id VARCHAR,
        error_file_id VARCHAR,
        status VARCHAR NOT NULL,
        request_count INTEGER NOT NULL,
        completed_count INTEGER,
        failed_count INTEGER,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        ingested_at TIMESTAMPTZ,
        error VARCHAR,
        model VARCHAR,
        endpoint VARCHAR,
        completion_window VARCHAR,
        metadata JSON,
        input_path VARCHAR,
        enqueued_tokens BIGINT,
        finished_at TIMESTAMPTZ,
        resubmit_after TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS batch_requests (
        batch_id VARCHAR NOT NULL,
        custom_id VARCHAR NOT NULL,
        request_hash VARCHAR NOT NULL,
        PRIMARY KEY (batch_id, custom_id)
    )
    """,
    # What load wrote to which target, so the next load sends only changes.
    # `target` names host, database and table without credentials;
    # `target_key` is the JSON array of the row's load.key values; `row_hash`
    # covers the content and the item columns sent with it. A row is written
    # only after the target committed its chunk.
    """
    CREATE TABLE IF NOT EXISTS load_ledger (
        target VARCHAR NOT NULL,
        target_key VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        item_key VARCHAR NOT NULL,
        custom_id VARCHAR NOT NULL,
        request_hash VARCHAR NOT NULL,
        attempt_id VARCHAR NOT NULL,
        content_hash VARCHAR NOT NULL,
        row_hash VARCHAR NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (target, target_key, stage)
    )
    """,
    # The estimate printed by each prepare, per stage.
    """
    CREATE TABLE IF NOT EXISTS estimates (
        prepared_at TIMESTAMPTZ NOT NULL,
        stage VARCHAR NOT NULL,
        requests BIGINT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        max_completion_tokens BIGINT NOT NULL,
        cost_usd DOUBLE,
        PRIMARY KEY (prepared_at, stage)
    )
    """,
]
