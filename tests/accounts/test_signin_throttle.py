"""The sign-in throttle's answers through both of Django's handlers (the browser test drives WSGI).

daphne and uvicorn serve the login pages through ASGI, where django-axes' middleware takes its async path.
"""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client

from credentials.models import AuditEntry


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_fifth_failure_answers_the_lockout_page(django_user_model):
    try:
        await sync_to_async(django_user_model.objects.create_user)("tina", password="pw-tina-123")
        client = AsyncClient()
        statuses = [(await client.post("/me/login/", {"username": "tina", "password": f"no-{n}"})).status_code
                    for n in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        locked = await client.post("/admin/login/", {"username": "tina", "password": "pw-tina-123"})
        assert locked.status_code == 429 and locked["Retry-After"] == "900"
        assert "Too many failed sign-ins" in locked.content.decode()
        assert await AuditEntry.objects.filter(action="signin_locked", target="tina").aexists()
    finally:
        await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_another_username_from_another_address_is_not_held_back(django_user_model, settings):
    django_user_model.objects.create_user("tina", password="pw-tina-123")
    django_user_model.objects.create_user("bob", password="pw-bob-123")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        attacker.post("/me/login/", {"username": "tina", "password": f"no-{n}"})
    # tina is locked from anywhere (per username); bob, from his own address, is not.
    assert Client(REMOTE_ADDR="198.51.100.7").post(
        "/me/login/", {"username": "tina", "password": "pw-tina-123"}).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.7").post(
        "/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 302
    # The attacker's address is locked for every username.
    assert attacker.post("/me/login/", {"username": "bob", "password": "pw-bob-123"}).status_code == 429
    entry = AuditEntry.objects.filter(action="signin_failed").first()
    assert entry.address == "203.0.113.9"
