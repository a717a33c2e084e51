from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import ApiKey
        from credentials.models import Credential, Model
        from gateway import catalog, keycache, pool
        from gateway.shared import generations

        def key_changed(sender: type, instance: ApiKey, **kwargs: object) -> None:
            keycache.evict(instance.digest)  # at once in this process
            generations.bump(generations.KEYS)  # within a poll in the others

        def catalog_changed(sender: type, **kwargs: object) -> None:
            catalog.invalidate()
            generations.bump(generations.CATALOG)

        def credential_changed(sender: type, **kwargs: object) -> None:
            generations.bump(generations.CREDENTIALS)

        # weak=False: the handlers are local functions and would be garbage-collected.
        for signal, suffix in ((post_save, ""), (post_delete, "_delete")):
            signal.connect(key_changed, sender=ApiKey, weak=False, dispatch_uid="gateway.evict_key" + suffix)
            signal.connect(catalog_changed, sender=Model, weak=False, dispatch_uid="gateway.catalog" + suffix)
            signal.connect(credential_changed, sender=Credential, weak=False,
                           dispatch_uid="gateway.credentials" + suffix)
        # What another process changed: clear the caches that may hold the old version.
        generations.subscribe(generations.KEYS, keycache.clear)
        generations.subscribe(generations.CATALOG, catalog.invalidate)
        generations.subscribe(generations.CREDENTIALS, pool.invalidate)
        # /me/ shows each limit's usage from the shared store; accounts may not import the gateway itself.
        from accounts import limit_usage
        from gateway import limits

        limit_usage.register(limits.usage)
