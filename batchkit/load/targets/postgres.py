"""Upsert into PostgreSQL (Supabase's direct or session-pooler connection).

Each chunk is one transaction: COPY into a temporary staging table, then one
INSERT ... ON CONFLICT DO UPDATE that changes a row only when its content
hashes or item columns differ. Under `load --full` the upsert has no such
guard and rewrites every row it is sent, which repairs rows edited outside
batchkit. In the wide layout a stage whose columns are NULL in the staged row
keeps the target's current values.
"""

import logging
from typing import Any

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from batchkit.job.model import Job
from batchkit.load.ddl import quote_identifier, quote_table, split_table
from batchkit.load.errors import ChunkRejectedError, LoadError, TransientLoadError
from batchkit.load.ledger import postgres_identity
from batchkit.load.rows import RowShape
from batchkit.load.targets import ChunkWrite, redact

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
STAGING_TABLE = "batchkit_staging"
# Errors after which the same chunk may succeed on a new connection.
TRANSIENT_ERRORS = (
    errors.SerializationFailure,  # 40001
    errors.DeadlockDetected,  # 40P01
    errors.AdminShutdown,  # 57P01, e.g. pg_terminate_backend
    psycopg.OperationalError,  # dropped connection and other server-side aborts
    psycopg.InterfaceError,  # the connection was already closed
)


def _list(names: tuple[str, ...] | list[str], prefix: str = "") -> str:
    return ", ".join(prefix + quote_identifier(name) for name in names)


def upsert_sql(shape: RowShape, table: str, *, rewrite: bool = False) -> str:
    """Return the INSERT ... ON CONFLICT statement that merges the staging table.

    Without `rewrite`, a conflicting row is updated only when its content
    hashes or item columns differ from the staged row. The hash columns do not
    change when someone edits a content column by hand, so `rewrite` drops
    that guard and updates every conflicting row.
    """
    columns = _list(shape.columns)
    assignments = [
        f"{quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}"
        for c in shape.item_columns
    ]
    compare_old = [f"target.{quote_identifier(c)}" for c in shape.item_columns]
    compare_new = [f"EXCLUDED.{quote_identifier(c)}" for c in shape.item_columns]
    if shape.layout == "long":
        changing = [
            c
            for c in shape.columns
            if c not in shape.key and c not in shape.item_columns
        ]
        assignments += [
            f"{quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}" for c in changing
        ]
        compare_old.append('target."content_hash"')
        compare_new.append('EXCLUDED."content_hash"')
    else:
        for names in shape.stage_groups.values():
            digest = quote_identifier(names[1])
            for name in names:
                column = quote_identifier(name)
                assignments.append(
                    f"{column} = CASE WHEN EXCLUDED.{digest} IS NULL "
                    f"THEN target.{column} ELSE EXCLUDED.{column} END"
                )
            compare_old.append(f"target.{digest}")
            compare_new.append(f"coalesce(EXCLUDED.{digest}, target.{digest})")
    assignments.append('"loaded_at" = now()')
    guard = (
        ""
        if rewrite
        else f"WHERE ROW({', '.join(compare_old)}) IS DISTINCT FROM "
        f"ROW({', '.join(compare_new)}) "
    )
    return (
        f"INSERT INTO {quote_table(table)} AS target ({columns}) "
        f"SELECT {columns} FROM {STAGING_TABLE} "
        f"ON CONFLICT ({_list(shape.key)}) DO UPDATE SET {', '.join(assignments)} "
        f"{guard}RETURNING (xmax = 0)"
    )


class PostgresTarget:
    """A PostgreSQL table reached through a database URL.

    `rewrite` (load --full) updates every conflicting row, also rows whose
    content hashes and item columns equal the staged ones.
    """

    def __init__(
        self,
        job: Job,
        shape: RowShape,
        url: str,
        url_env: str,
        *,
        rewrite: bool = False,
    ) -> None:
        self.job = job
        self.shape = shape
        self.table = job.load.table
        self.url_env = url_env
        self._url = url
        self._secrets = [url, _password(url)]
        self.identity = postgres_identity(url, self.table)
        self._upsert = upsert_sql(shape, self.table, rewrite=rewrite)
        self._connection: psycopg.Connection[Any] | None = None

    def _redact(self, error: BaseException) -> str:
        return redact(str(error).strip(), self._secrets)

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        try:
            # No server-side prepared statements, which a transaction-mode
            # pooler (Supabase's port 6543) cannot keep between transactions.
            connection = psycopg.connect(
                self._url,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                prepare_threshold=None,
            )
        except psycopg.Error as error:
            raise TransientLoadError(
                f"{self.identity}: cannot connect ({self._redact(error)}); check "
                f"the URL in ${self.url_env}"
            ) from None
        self._connection = connection
        return connection

    def open(self, statements: list[str] | None) -> None:
        """Connect, create the table if asked, and check columns and privileges."""
        try:
            connection = self._connect()
        except TransientLoadError as error:
            raise LoadError(str(error)) from None
        try:
            self._ensure_table(connection, statements)
            check_privileges(connection, self.table, self.identity)
            self._check_columns(connection)
            connection.commit()
        except psycopg.Error as error:
            raise LoadError(f"{self.identity}: {self._redact(error)}") from None

    def _ensure_table(
        self, connection: psycopg.Connection[Any], statements: list[str] | None
    ) -> None:
        row = connection.execute(
            "SELECT to_regclass(%s)", [quote_table(self.table)]
        ).fetchone()
        if row is not None and row[0] is not None:
            return
        if statements is None:
            raise LoadError(
                f"{self.identity}: table {self.table} not found; create it with the "
                f"output of `batchkit schema -j {self.job.path}` (a Supabase "
                "migration) or rerun load with --create-table"
            )
        for statement in statements:
            connection.execute(statement)  # type: ignore[arg-type]
        connection.commit()
        logger.info("created table %s at %s", self.table, self.identity)

    def _check_columns(self, connection: psycopg.Connection[Any]) -> None:
        rows = connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped",
            [quote_table(self.table)],
        ).fetchall()
        present = {row[0] for row in rows}
        missing = [c for c in (*self.shape.columns, "loaded_at") if c not in present]
        if missing:
            raise LoadError(
                f"{self.identity}: table {self.table} has no column "
                f"{', '.join(missing)}; compare it with `batchkit schema -j "
                f"{self.job.path}` and add the missing columns"
            )

    def write(self, rows: list[tuple[Any, ...]]) -> ChunkWrite:
        """Upsert `rows` in one transaction and return the inserted/updated counts."""
        columns = _list(self.shape.columns)
        try:
            connection = self._connect()
            with connection.cursor() as cursor:
                # Created and dropped inside the chunk's transaction, so it
                # needs no session state between chunks.
                cursor.execute(
                    f"CREATE TEMP TABLE {STAGING_TABLE} ON COMMIT DROP AS "  # type: ignore[arg-type]
                    f"SELECT {columns} FROM {quote_table(self.table)} WITH NO DATA"
                )
                copy_sql = f"COPY {STAGING_TABLE} ({columns}) FROM STDIN"
                with cursor.copy(copy_sql) as copy:  # type: ignore[arg-type]
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(self._upsert)  # type: ignore[arg-type]
                flags = [row[0] for row in cursor.fetchall()]
            connection.commit()
        except psycopg.Error as error:
            self._rollback()
            raise self._classify(error) from None
        inserted = sum(1 for flag in flags if flag)
        return ChunkWrite(inserted=inserted, updated=len(flags) - inserted)

    def _classify(self, error: psycopg.Error) -> LoadError:
        text = self._redact(error)
        if isinstance(error, errors.QueryCanceled):
            return ChunkRejectedError(f"{self.identity}: {text}")
        if isinstance(error, errors.InsufficientPrivilege):
            return LoadError(permission_message(self.identity, self.table, text))
        if isinstance(error, errors.InvalidColumnReference):
            return LoadError(
                f"{self.identity}: {text}; the table needs a unique index on "
                f"({', '.join(self.shape.key)}), see `batchkit schema -j "
                f"{self.job.path}`"
            )
        if isinstance(error, TRANSIENT_ERRORS):
            return TransientLoadError(f"{self.identity}: {text}")
        return LoadError(f"{self.identity}: {text}")

    def _rollback(self) -> None:
        connection = self._connection
        if connection is None or connection.closed:
            return
        try:
            connection.rollback()
        except psycopg.Error:
            self.reset()

    def reset(self) -> None:
        """Close the connection so that the next write opens a new one."""
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error as error:
                logger.debug("closing a broken connection failed: %s", error)
        self._connection = None

    def close(self) -> None:
        """Close the connection."""
        self.reset()


def _password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


def permission_message(identity: str, table: str, detail: str) -> str:
    """Return the message of a privilege or row-level-security error."""
    return (
        f"{identity}: permission denied ({detail}); nothing of this chunk was "
        f"written. Check that the role in the URL has INSERT, UPDATE and SELECT on "
        f"{table} (GRANT INSERT, UPDATE, SELECT ON {table} TO <role>) and, if "
        "row-level security is enabled, that a policy allows it to insert and "
        "update these rows, or load with the service role"
    )


def check_privileges(
    connection: psycopg.Connection[Any], table: str, identity: str
) -> None:
    """Raise LoadError before any write if the role cannot upsert into `table`."""
    quoted = quote_table(table)
    row = connection.execute(
        "SELECT current_user, has_table_privilege(%s, 'INSERT'), "
        "has_table_privilege(%s, 'UPDATE'), has_table_privilege(%s, 'SELECT')",
        [quoted, quoted, quoted],
    ).fetchone()
    assert row is not None
    role, *granted = row
    missing = [
        name
        for name, ok in zip(("INSERT", "UPDATE", "SELECT"), granted, strict=True)
        if not ok
    ]
    if missing:
        raise LoadError(
            f"{identity}: role {role} lacks {', '.join(missing)} on {table}; "
            f"nothing was written. Run GRANT {', '.join(missing)} ON {table} TO "
            f"{role}, or load with a role that has them (e.g. the service role)"
        )
    _check_row_security(connection, table, identity, role)


def _check_row_security(
    connection: psycopg.Connection[Any], table: str, identity: str, role: str
) -> None:
    row = connection.execute(
        """
        SELECT c.relrowsecurity AND (c.relforcerowsecurity OR c.relowner <> r.oid)
               AND NOT (r.rolbypassrls OR r.rolsuper)
        FROM pg_class c, pg_roles r
        WHERE c.oid = %s::regclass AND r.rolname = current_user
        """,
        [quote_table(table)],
    ).fetchone()
    if row is None or not row[0]:
        return
    schema, name = split_table(table)
    policies = connection.execute(
        "SELECT cmd FROM pg_policies WHERE schemaname = %s AND tablename = %s "
        "AND cmd IN ('ALL', 'INSERT', 'UPDATE')",
        [schema, name],
    ).fetchall()
    commands = {policy[0] for policy in policies}
    if "ALL" in commands or {"INSERT", "UPDATE"} <= commands:
        return
    raise LoadError(
        f"{identity}: row-level security is enabled on {table} and no policy lets "
        f"role {role} insert and update rows; nothing was written. Add INSERT and "
        "UPDATE policies for this role, or load with the service role (it bypasses "
        "row-level security)"
    )
