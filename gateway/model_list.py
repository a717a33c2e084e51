"""/v1/models: the models a key may use whose provider has an active credential (in the key's groups, if any)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from asgiref.sync import sync_to_async

from accounts.models import ApiKey
from credentials.models import Credential
from gateway import catalog
from gateway.catalog import Entry


def _active_providers(groups: list[str]) -> set[str]:
    active = Credential.objects.filter(status=Credential.Status.ACTIVE).values_list("provider", "groups")
    wanted = set(groups)
    return {provider for provider, in_groups in active if not wanted or wanted.intersection(in_groups or ())}


async def available_entries(api_key: ApiKey) -> list[Entry]:
    providers = await sync_to_async(_active_providers)(list(api_key.groups or []))
    return [e for e in await catalog.aentries() if e.provider in providers and api_key.allows(e.name)]


def openai_models(entries: list[Entry]) -> dict[str, Any]:
    owners = {"claude": "anthropic", "codex": "openai"}
    return {"object": "list", "data": [
        {"id": e.name, "object": "model", "created": int(e.created_at), "owned_by": owners.get(e.provider, e.provider)}
        for e in entries
    ]}


def anthropic_models(entries: list[Entry]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": e.name, "display_name": e.display_name,
         "created_at": datetime.fromtimestamp(e.created_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for e in entries
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
