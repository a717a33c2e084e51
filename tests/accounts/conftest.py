"""A logged-in teammate, a second one, staff, and the seeded model catalog."""
from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Callable

import pytest
from django.test import Client
from django.utils import timezone

SEED = importlib.import_module("credentials.migrations.0002_seed_models").MODELS


@pytest.fixture
def catalog(db: None) -> None:
    """The seeded catalog (a transactional test elsewhere may have flushed the migration's rows)."""
    from credentials.models import Model

    for name, display, provider, max_out, adaptive, aliases in SEED:
        Model.objects.get_or_create(name=name, defaults={
            "display_name": display, "provider": provider, "max_output_tokens": max_out,
            "adaptive_thinking": adaptive, "aliases": aliases})


@pytest.fixture
def alice(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password="alice-pw")


@pytest.fixture
def bob(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("bob", password="bob-pw")


@pytest.fixture
def alice_client(alice: Any) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob: Any) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def staff_client(db: None, django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    return client


@pytest.fixture
def usage_factory(db: None) -> Callable[..., Any]:
    """Write one usage row for a key through store.write_rows(), the gateway's write path (rollups included)."""
    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    def make(api_key: Any, model: str = "claude-sonnet-4-6", *, at: datetime | None = None, **fields: Any) -> Any:
        row = UsageRow(created_at=at or timezone.now(), api_key_id=api_key.pk, user_id=api_key.user_id,
                       key_prefix=api_key.prefix, endpoint="messages", requested_model=model, **fields)
        write_rows([row])
        return row

    return make


@pytest.fixture
def priced_catalog(db: None) -> None:
    """Sonnet 4.6 at its list prices, GPT models without prices (whatever earlier tests left)."""
    from decimal import Decimal

    from credentials.models import Model

    Model.objects.update_or_create(name="claude-sonnet-4-6", defaults={
        "provider": "claude", "input_price": Decimal(3), "output_price": Decimal(15),
        "cache_read_price": Decimal("0.3"), "cache_write_price": Decimal("3.75")})
    Model.objects.filter(provider="codex").update(input_price=None, output_price=None)
