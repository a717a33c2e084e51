"""What a concurrency slot costs on the database backend: taking one is one statement after the key's lock,
giving it back one statement; on Postgres neither waits for the disk, and that never leaks past them
(the usage rows written next on the same connection still commit durably)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway.shared import database
from gateway.shared.base import Rate, Slots

pytestmark = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def test_taking_and_giving_back_a_slot_is_one_statement_each():
    slots = Slots("cost:conc", 2, 60.0)
    with CaptureQueriesContext(connection) as taking:
        admitted = database._admit(None, slots, {})
    assert admitted.allowed and admitted.holder
    statements = [q["sql"] for q in taking.captured_queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    # Postgres: the key's advisory lock, then one INSERT (lapsed leases dropped in it); SQLite: no lock
    # statement (BEGIN IMMEDIATE is the lock), the lapsed leases dropped in a statement of their own.
    assert len(statements) == 2, statements
    with CaptureQueriesContext(connection) as giving:
        database._release_slot(slots.key, admitted.holder)
    assert len(giving.captured_queries) == 1 and database._slots_held(slots.key) == 0


def test_a_full_key_refuses_and_lapsed_leases_do_not_count():
    slots = Slots("cost:full", 2, 60.0)
    holders = [database._admit(None, slots, {}).holder for _ in range(2)]
    refused = database._admit(None, slots, {})
    assert not refused.allowed and refused.refused_by == "slot" and database._slots_held(slots.key) == 2
    database.SharedLease.objects.filter(holder=holders[0]).update(expires_at=0)  # its process died
    assert database._admit(None, slots, {}).allowed
    assert database._slots_held(slots.key) == 2
    assert not database.SharedLease.objects.filter(holder=holders[0]).exists()  # dropped on the way


def test_the_rate_still_counts_only_when_the_slot_is_free():
    rate, slots = Rate("cost:rpm", 10, 60.0), Slots("cost:one", 1, 60.0)
    assert database._admit(rate, slots, {}).allowed
    refused = database._admit(rate, slots, {})
    assert not refused.allowed and refused.refused_by == "slot"
    assert database._window_total(rate.key, 60.0) == 1


def test_on_postgres_the_quick_commits_stay_inside_the_slot_statements():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is Postgres's")
    assert synchronous_commit() == "on"
    admitted = database._admit(None, Slots("cost:pg", 1, 60.0), {})
    assert synchronous_commit() == "on"
    database._release_slot("cost:pg", admitted.holder)
    assert synchronous_commit() == "on"
    assert database._slots_held("cost:pg") == 0
