"""A throwaway PostgreSQL cluster on 127.0.0.1, the stand-in for Supabase.

Used by the demo and the tests. It needs the PostgreSQL server binaries
(initdb, pg_ctl); Debian installs them under /usr/lib/postgresql/<version>/bin.
PostgreSQL refuses to run as root, so as root the cluster runs as the
`postgres` OS user through `runuser`.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchkit.errors import BatchkitError


class LocalPostgresError(BatchkitError):
    """The local cluster could not be found or started."""


@dataclass(frozen=True)
class LocalPostgres:
    """A running cluster: its database URL and data directory."""

    url: str
    port: int
    data_dir: Path


def find_server_binaries() -> Path | None:
    """Return the folder holding initdb and pg_ctl, the newest version first."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: (
            int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0
        ),
        reverse=True,
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LocalPostgresError(
            f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-800:]}"
        )


def _create_database(port: int, database: str) -> None:
    import psycopg
    from psycopg import sql

    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
        )


@contextlib.contextmanager
def local_postgres(database: str = "batchkit") -> Iterator[LocalPostgres]:
    """Start a fresh cluster with one database; stop and delete it on exit."""
    binaries = find_server_binaries()
    if binaries is None:
        raise LocalPostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install the "
            "postgresql package or put them on PATH"
        )
    root = Path(tempfile.mkdtemp(prefix="batchkit-pg-"))
    data_dir = root / "data"
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    port = free_port()
    try:
        _run(
            [
                str(binaries / "initdb"),
                "-D",
                str(data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            "initdb",
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
            ],
            "pg_ctl start",
        )
        try:
            _create_database(port, database)
            url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
            yield LocalPostgres(url=url, port=port, data_dir=data_dir)
        finally:
            _run(
                [
                    str(binaries / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                "pg_ctl stop",
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
