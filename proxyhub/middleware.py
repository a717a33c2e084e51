"""Who acts in a request, for the audit trail (credentials.audit).

The actor is resolved only when an entry is written, so requests that change
nothing cost nothing. It must sit after AuthenticationMiddleware (and
OTPMiddleware), which give the request its user. /v1 never passes through
Django middleware: gateway traffic has no actor and changes nothing audited.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from credentials import audit


def request_actor(request: HttpRequest) -> audit.Actor:
    """The signed-in user (or "anonymous") and the request's source address."""
    address = audit.client_address(request.META)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return audit.Actor(user.get_username(), user.pk, address)
    return audit.Actor("anonymous", None, address)


class AuditActorMiddleware:
    """Sets the audit actor for the view; sync- and async-capable (STYLE.md §7.5)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        with audit.acting_as(lambda: request_actor(request)):
            return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        with audit.acting_as(lambda: request_actor(request)):
            return await self.get_response(request)
