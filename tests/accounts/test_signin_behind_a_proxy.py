"""The sign-in throttle (django-axes) and the audit trail behind a load balancer (PROXYHUB_TRUSTED_PROXIES):
each client behind it is locked out on its own, and without the setting a forged X-Forwarded-For
neither escapes the lock nor lands in the audit trail."""
from __future__ import annotations

import pytest
from django.test import Client

from credentials.models import AuditEntry
from proxyhub.client_ip import parse_trusted

BALANCER = "10.0.0.5"


def through(forwarded_for: str, peer: str = BALANCER) -> Client:
    return Client(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded_for)


def fail_five_times(client_for, names: list[str]) -> list[int]:
    """Five wrong passwords, each for another username: only the address can reach the limit."""
    return [client_for(n).post("/me/login/", {"username": name, "password": "wrong"}).status_code
            for n, name in enumerate(names)]


@pytest.mark.django_db
def test_behind_a_trusted_balancer_each_client_is_locked_out_on_its_own(django_user_model, settings):
    settings.PROXYHUB_TRUSTED_PROXIES = parse_trusted([BALANCER])
    django_user_model.objects.create_user("bob", password="pw-bob-123")
    statuses = fail_five_times(lambda n: through("198.51.100.1"), [f"user{n}" for n in range(5)])
    assert statuses == [200, 200, 200, 200, 429]
    # The guesser's address is locked, for every username, the right password included ...
    assert through("198.51.100.1").post("/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 429
    # ... and a client it wrote itself, left of the balancer's entry, does not get it out.
    assert through("203.0.113.50, 198.51.100.1").post(
        "/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 429
    # A teammate behind the same balancer signs in.
    assert through("198.51.100.2").post("/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 302
    # The audit trail names the clients, not the balancer.
    assert set(AuditEntry.objects.filter(action="signin_failed").values_list("address", flat=True)) == {"198.51.100.1"}
    assert AuditEntry.objects.get(action="signin", target="bob").address == "198.51.100.2"


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_header_does_not_escape_the_lockout(django_user_model, settings):
    settings.PROXYHUB_TRUSTED_PROXIES = ()
    django_user_model.objects.create_user("bob", password="pw-bob-123")
    # A different forged address each time, from one real address.
    statuses = fail_five_times(lambda n: through(f"198.51.100.{n + 1}", peer="203.0.113.9"),
                               [f"user{n}" for n in range(5)])
    assert statuses == [200, 200, 200, 200, 429]
    assert through("198.51.100.77", peer="203.0.113.9").post(
        "/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 429
    assert set(AuditEntry.objects.filter(action="signin_failed").values_list("address", flat=True)) == {"203.0.113.9"}
    # Another real address is not held back.
    assert through("203.0.113.9", peer="198.51.100.7").post(
        "/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 302
