"""Upsert through Supabase's REST API (PostgREST) with supabase-py.

Supabase advises COPY over a database connection for bulk loads; this path is
for projects that expose only the API URL and a service key. Each request is
`upsert(rows, on_conflict=<key>, returning=minimal)`. PostgREST updates every
column in the request, so in the wide layout the rows of a chunk are grouped
by the stages they carry and each group sends only those stages' columns,
which leaves the other stages' columns untouched.
"""

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
from postgrest import APIError
from postgrest.types import ReturnMethod
from supabase import Client, ClientOptions, SupabaseException, create_client

from batchkit.job.model import Job
from batchkit.load.ddl import split_table
from batchkit.load.errors import ChunkRejectedError, LoadError, TransientLoadError
from batchkit.load.ledger import rest_identity
from batchkit.load.rows import RowShape
from batchkit.load.targets import ChunkWrite, redact
from batchkit.load.targets.postgres import permission_message

logger = logging.getLogger(__name__)

# PostgREST codes for a pool or connection problem that may pass on retry.
TRANSIENT_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}
# A statement timeout and 413 Payload Too Large pass when the chunk is smaller.
SPLIT_CODES = {"57014", "413"}
AUTH_CODES = {"PGRST300", "PGRST301", "PGRST302", "401"}
# Seconds per request; a chunk that takes longer is sent again in halves.
REQUEST_TIMEOUT_SECONDS = 120.0


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class RestTarget:
    """A table behind a Supabase project URL, written with a service key."""

    def __init__(
        self, job: Job, shape: RowShape, url: str, key: str, key_env: str
    ) -> None:
        self.job = job
        self.shape = shape
        self.table = job.load.table
        self.key_env = key_env
        self.identity = rest_identity(url, self.table)
        self._secrets = [key]
        self._url = url
        self._key = key
        self._client: Client | None = None
        self._http: httpx.Client | None = None

    def open(self, statements: list[str] | None) -> None:
        """Create the client; REST cannot create tables, so `statements` is an error."""
        if statements is not None:
            raise LoadError(
                f"{self.identity}: the REST API cannot create tables; run the output "
                f"of `batchkit schema -j {self.job.path}` in the Supabase SQL editor "
                "or a migration, then load again without --create-table"
            )
        # An own httpx client carries the timeout; supabase-py 2.34 deprecates
        # passing it through postgrest_client_timeout.
        self._http = httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS)
        options = ClientOptions(httpx_client=self._http)
        try:
            self._client = create_client(self._url, self._key, options)
        except SupabaseException as error:
            raise LoadError(
                f"{self.identity}: {redact(str(error), self._secrets)}; check the "
                "project URL and key variables"
            ) from None

    def write(self, rows: list[tuple[Any, ...]]) -> ChunkWrite:
        """Upsert `rows`, one request per group of rows carrying the same columns."""
        for payload in self._payloads(rows):
            self._send(payload)
        return ChunkWrite(inserted=None, updated=None)

    def _payloads(self, rows: list[tuple[Any, ...]]) -> list[list[dict[str, Any]]]:
        columns = self.shape.columns
        if self.shape.layout == "long":
            return [
                [dict(zip(columns, map(_json_value, r), strict=True)) for r in rows]
            ]
        groups: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            record = dict(zip(columns, map(_json_value, row), strict=True))
            absent = [
                names
                for names in self.shape.stage_groups.values()
                if record[names[1]] is None
            ]
            for names in absent:
                for name in names:
                    del record[name]
            groups[frozenset(record)].append(record)
        return list(groups.values())

    def _builder(self) -> Any:
        assert self._client is not None, "open() was not called"
        schema, table = split_table(self.table)
        if "." in self.table:
            return self._client.schema(schema).table(table)
        return self._client.table(table)

    def _send(self, payload: list[dict[str, Any]]) -> None:
        try:
            self._builder().upsert(
                payload,
                on_conflict=",".join(self.shape.key),
                returning=ReturnMethod.minimal,
            ).execute()
        except APIError as error:
            raise self._classify(error) from None
        except httpx.TimeoutException as error:
            raise ChunkRejectedError(
                f"{self.identity}: no response within {REQUEST_TIMEOUT_SECONDS:.0f} s "
                f"({type(error).__name__})"
            ) from None
        except httpx.HTTPError as error:
            raise TransientLoadError(
                f"{self.identity}: {redact(str(error), self._secrets)}"
            ) from None

    def _classify(self, error: APIError) -> LoadError:
        code = str(error.code or "")
        text = redact(f"{code} {error.message or ''}".strip(), self._secrets)
        if code == "42501":
            return LoadError(permission_message(self.identity, self.table, text))
        if code in AUTH_CODES:
            return LoadError(
                f"{self.identity}: the API rejected the key ({text}); set "
                f"${self.key_env} to the project's service role key"
            )
        if code in SPLIT_CODES or (code.isdigit() and code.startswith("5")):
            return ChunkRejectedError(f"{self.identity}: {text}")
        if code in TRANSIENT_CODES:
            return TransientLoadError(f"{self.identity}: {text}")
        return LoadError(
            f"{self.identity}: {text}; compare the table with `batchkit schema -j "
            f"{self.job.path}`"
        )

    def reset(self) -> None:
        """Keep the client; httpx opens a new connection when the old one broke."""

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._http is not None:
            self._http.close()
        self._client = self._http = None
