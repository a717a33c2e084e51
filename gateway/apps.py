from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import ApiKey
        from credentials.models import Model
        from gateway import catalog, keycache

        def evict_key(sender: type, instance: ApiKey, **kwargs: object) -> None:
            keycache.evict(instance.digest)

        # weak=False: evict_key is a local function and would be garbage-collected.
        post_save.connect(evict_key, sender=ApiKey, weak=False, dispatch_uid="gateway.evict_key")
        post_delete.connect(evict_key, sender=ApiKey, weak=False, dispatch_uid="gateway.evict_key_delete")
        post_save.connect(catalog.invalidate, sender=Model, dispatch_uid="gateway.catalog")
        post_delete.connect(catalog.invalidate, sender=Model, dispatch_uid="gateway.catalog_delete")
