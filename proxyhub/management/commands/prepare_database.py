"""Wait for the database, then migrate and create the first admin, one starting process at a time.

Replicas (or several ``scripts/start``) that start together would each run ``migrate``, and
concurrent migrates race: both apply the same migration and the second fails on a table that
already exists. Each starter takes a lock first (a Postgres advisory lock, or an flock beside the
SQLite file), so the others wait, then find nothing left to apply and the admin already created.
"""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

# Any constant shared by every ProxyHub process; "PHmigrat" as a 64-bit integer.
ADVISORY_LOCK_KEY = 0x50486D6967726174


class Command(BaseCommand):
    help = "Wait for the database, then (one process at a time) apply migrations and create the first admin."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--wait", type=float, default=60.0,
                            help="seconds to wait for the database to answer (default 60)")

    def handle(self, *args: Any, **options: Any) -> None:
        wait_for_database(options["wait"], self.stdout.write)
        with migration_lock():
            call_command("migrate", interactive=False, verbosity=options["verbosity"], stdout=self.stdout)
            call_command("ensure_admin", stdout=self.stdout)


def wait_for_database(seconds: float, say: Any) -> None:
    """Return once the default database accepts a connection; CommandError after ``seconds``."""
    deadline = time.monotonic() + seconds
    connection = connections[DEFAULT_DB_ALIAS]
    said = False
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                # The driver's message names the host and the failure, never the password.
                raise CommandError(f"the database did not answer within {seconds:g} s: {exc}") from exc
            if not said:
                say(f"Waiting for the database ({connection.vendor}) ...")
                said = True
            time.sleep(1)


@contextmanager
def migration_lock() -> Iterator[None]:
    """Hold a lock that every ProxyHub starter on this database takes before migrating."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        with _advisory_lock():
            yield
    elif connection.vendor == "sqlite" and not str(connection.settings_dict["NAME"]).startswith(":"):
        with _file_lock(Path(str(connection.settings_dict["NAME"]) + ".migrate-lock")):
            yield
    else:
        yield


@contextmanager
def _advisory_lock() -> Iterator[None]:
    # A connection of its own: migrate may close and reopen the default one, which would drop
    # a session-level lock held on it.
    holder = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        yield
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    finally:
        holder.close()  # closing also releases the lock if the unlock was not reached


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield
