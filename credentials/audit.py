"""The audit trail: every change from the admin, the teammate pages or a command leaves an entry.

    acting_as(actor)          who acts in this context: proxyhub.middleware sets it per request (lazily,
                              from request.user), commands set cli:<os user>; otherwise "system"
    operation(action)         names the saves inside it (credential.imported, credential.refreshed ...)
    record(action, ...)       writes one AuditEntry
    track(model, name, ...)   records every save, delete and many-to-many change of a model, with
                              field diffs, so a new field (or a new model) is audited by listing it once

It lives in credentials, the lowest app, so every app can record (accounts and
gateway import credentials, never the other way). Secret fields never reach an
entry: ``secret`` fields show as "(set)" / "(changed)", ``hidden`` ones not at all.
"""
from __future__ import annotations

import contextvars
import getpass
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from credentials.audit_models import AuditEntry
from proxyhub.client_ip import client_ip

logger = logging.getLogger(__name__)

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int | None = None
    address: str | None = None


ActorSource = Actor | Callable[[], Actor]

_actor: contextvars.ContextVar[ActorSource | None] = contextvars.ContextVar("audit_actor", default=None)
_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_operation", default=None)
_default_actor: Actor | None = None  # cli:<os user> when running manage.py (use_command_line_actor)


def cli_actor() -> Actor:
    """``cli:<os user>``, the actor of management commands."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        who = str(os.getuid())
    return Actor(f"cli:{who}")


def use_command_line_actor(argv: list[str]) -> None:
    """Make cli:<os user> the default actor of a ``manage.py <command>`` process (not of a server it runs)."""
    global _default_actor
    if argv and os.path.basename(argv[0]) == "manage.py" and (len(argv) < 2 or argv[1] not in {"runserver"}):
        _default_actor = cli_actor()


def current_actor() -> Actor:
    source = _actor.get()
    if source is None:
        return _default_actor or Actor(SYSTEM)
    return source() if callable(source) else source


@contextmanager
def acting_as(actor: ActorSource) -> Iterator[None]:
    """Attribute the changes made inside to ``actor`` (an Actor, or a callable giving one when needed)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def operation(action: str) -> Iterator[None]:
    """Record the tracked saves inside as ``action`` (e.g. credential.imported), even token-only ones."""
    token = _operation.set(action)
    try:
        yield
    finally:
        _operation.reset(token)


def client_address(meta: dict[str, Any]) -> str | None:
    """The client's address (REMOTE_ADDR, or X-Forwarded-For's behind PROXYHUB_TRUSTED_PROXIES) when it is
    an IP address (the test client's and some servers' placeholders are not)."""
    value = client_ip(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"),
                      settings.PROXYHUB_TRUSTED_PROXIES) or ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def record(action: str, *, target: Any = None, target_type: str = "", target_id: Any = "", label: str = "",
           changes: dict[str, Any] | None = None, actor: Actor | None = None, **notes: Any) -> AuditEntry:
    """Write one entry. ``target`` may be a model instance (its type, pk and str are taken) or omitted
    in favour of ``target_type``/``target_id``/``label``. Never pass a secret in ``changes`` or ``notes``."""
    who = actor or current_actor()
    if isinstance(target, models.Model):
        target_type = target_type or target._meta.model_name or ""
        target_id = target_id or target.pk
        label = label or str(target)
    detail: dict[str, Any] = {}
    if changes:
        detail["changes"] = _plain(changes)
    detail.update({k: _plain(v) for k, v in notes.items() if v not in (None, "")})
    return AuditEntry.objects.create(
        actor=who.name[:150], user_id=who.user_id, address=who.address, action=action[:60],
        target_type=target_type[:40], target_id=str(target_id or "")[:64], target=label[:200], detail=detail,
    )


# --- generic tracking of a model --------------------------------------------------------------------


@dataclass
class Tracking:
    """How one model is audited. ``quiet`` fields are listed in a diff but do not make an entry on
    their own (a background token refresh is not an admin's change); ``classify`` names the action."""

    name: str
    secret: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()
    quiet: frozenset[str] = frozenset()
    classify: Callable[[bool, dict[str, Any]], str] | None = None
    describe: Callable[[Any], str] = str
    fields: list[str] = field(default_factory=list)

    def action(self, created: bool, changes: dict[str, Any]) -> str:
        if self.classify:
            return self.classify(created, changes)
        return f"{self.name}.{'created' if created else 'changed'}"


_tracked: dict[type[models.Model], Tracking] = {}


def track(model: type[models.Model], name: str, *, secret: Iterable[str] = (), hidden: Iterable[str] = (),
          quiet: Iterable[str] = (), classify: Callable[[bool, dict[str, Any]], str] | None = None,
          describe: Callable[[Any], str] = str) -> None:
    """Audit every save, delete and many-to-many change of ``model`` (call once, from an AppConfig.ready).

    ``describe`` names the target in entries (default str()); it must not reveal a secret."""
    tracking = Tracking(name, frozenset(secret), frozenset(hidden), frozenset(quiet), classify, describe)
    tracking.fields = [f.name for f in model._meta.concrete_fields if f.name not in tracking.hidden]
    _tracked[model] = tracking
    uid = f"audit.{model._meta.label}"
    pre_save.connect(_before_save, sender=model, weak=False, dispatch_uid=uid)
    post_save.connect(_after_save, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(_after_delete, sender=model, weak=False, dispatch_uid=uid)
    for m2m in model._meta.many_to_many:
        if m2m.name not in tracking.hidden:
            m2m_changed.connect(_m2m_changed, sender=m2m.remote_field.through, weak=False,
                                dispatch_uid=f"{uid}.{m2m.name}")


def _values(instance: models.Model, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(instance, instance._meta.get_field(n).attname) for n in names}


def _named(instance: models.Model, values: dict[str, Any]) -> dict[str, Any]:
    """A created object's foreign keys by name (``user: alice``) when the related object is at hand."""
    named = dict(values)
    for name in values:
        f = instance._meta.get_field(name)
        if f.is_relation and f.many_to_one and f.is_cached(instance):  # type: ignore[union-attr]
            related = getattr(instance, name)
            named[name] = str(related) if related is not None else None
    return named


def _before_save(sender: type[models.Model], instance: models.Model, raw: bool = False,
                 update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
    tracking = _tracked[sender]
    if raw or instance._state.adding or instance.pk is None:
        return
    names = [n for n in tracking.fields if update_fields is None or n in update_fields]
    if not names:  # only hidden fields are saved (e.g. last_login): nothing to audit
        instance._audit_before = {}  # type: ignore[attr-defined]
        return
    attnames = {instance._meta.get_field(n).attname: n for n in names}
    row = sender._base_manager.filter(pk=instance.pk).values(*attnames).first()
    instance._audit_before = {attnames[k]: v for k, v in row.items()} if row else None  # type: ignore[attr-defined]


def _after_save(sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False,
                update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
    if raw:
        return
    tracking = _tracked[sender]
    before = getattr(instance, "_audit_before", None)
    instance.__dict__.pop("_audit_before", None)
    if created or before is None:
        names = [n for n in tracking.fields if n != instance._meta.pk.name]
        after = _named(instance, _values(instance, names))
        changes = {n: _shown(tracking, n, None, v, created=True) for n, v in after.items()
                   if v not in (None, "", [], {})}
        created = True
    else:
        after = _values(instance, before)
        changes = {n: _shown(tracking, n, before[n], after[n]) for n in before if before[n] != after[n]}
        loud = [n for n in changes if n not in tracking.quiet]
        if not loud and _operation.get() is None:
            return
    _record_change(tracking, instance, _operation.get() or tracking.action(created, changes), changes)


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    tracking = _tracked[sender]
    _record_change(tracking, instance, f"{tracking.name}.deleted", {})


def _m2m_changed(sender: Any, instance: models.Model, action: str, model: type[models.Model],
                 pk_set: set[Any] | None, reverse: bool = False, **kwargs: Any) -> None:
    tracking = _tracked.get(type(instance))
    if tracking is None or reverse or action not in {"post_add", "post_remove", "pre_clear"}:
        return
    relation = next((f.name for f in instance._meta.many_to_many if f.remote_field.through is sender), "")
    if action == "pre_clear":
        names = [str(o) for o in getattr(instance, relation).all()]
        key = "removed"
    else:
        names = [str(o) for o in model._base_manager.filter(pk__in=pk_set or [])]
        key = "added" if action == "post_add" else "removed"
    if names:
        _record_change(tracking, instance, _operation.get() or f"{tracking.name}.changed",
                       {relation: {key: sorted(names)}})


def _record_change(tracking: Tracking, instance: models.Model, action: str, changes: dict[str, Any]) -> None:
    try:
        label = tracking.describe(instance)
    except Exception:  # e.g. a related row already gone in a cascade: the plain name will do
        label = str(instance)
    record(action, target=instance, target_type=tracking.name, label=label, changes=changes)


def _shown(tracking: Tracking, name: str, old: Any, new: Any, *, created: bool = False) -> Any:
    """A created object's value, or [old, new]; a secret field only says that it changed."""
    if name in tracking.secret:
        return "(cleared)" if old and not new else "(set)" if new and not old else "(changed)"
    return _plain(new) if created else [_plain(old), _plain(new)]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy: datetimes as ISO text, decimals as text, URLs without their password."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and "://" in value and "@" in value:
        return _without_password(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _without_password(url: str) -> str:
    """socks5://user:pass@host:port -> socks5://user:***@host:port (proxy URLs may carry a password)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(a URL)"
    return urlunsplit(parts._replace(netloc=netloc))


def summary(detail: dict[str, Any]) -> str:
    """One line for an entry's detail: ``field: old → new`` for each change, then the notes."""
    parts = []
    for name, change in (detail.get("changes") or {}).items():
        if isinstance(change, list) and len(change) == 2:
            parts.append(f"{name}: {_short(change[0])} → {_short(change[1])}")
        else:
            parts.append(f"{name}: {_short(change)}")
    parts += [f"{k}: {_short(v)}" for k, v in detail.items() if k != "changes"]
    return "; ".join(parts)


def _short(value: Any, limit: int = 80) -> str:
    text = "—" if value in (None, "") else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class AuditedCommand(BaseCommand):
    """A management command whose changes are recorded as ``cli:<os user>`` however it is run
    (manage.py sets that default already; call_command() from code or tests does not)."""

    def execute(self, *args: Any, **options: Any) -> Any:
        with acting_as(cli_actor()):
            return super().execute(*args, **options)
