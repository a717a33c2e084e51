"""Account groups: names that bind API keys to a subset of the credential pool (issue 8).

A credential belongs to zero or more groups; a key bound to groups uses only
their accounts (gateway.pool.in_groups), and a key bound to none uses every account.
Groups are stored as plain lists of names on both models: there is nothing else to know about a group.
"""
from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


def parse_groups(text: str) -> list[str]:
    """``"core, contractors"`` -> ``["contractors", "core"]`` (sorted, no duplicates); ValueError for a bad name."""
    names = sorted({part.strip() for part in text.split(",") if part.strip()})
    bad = [n for n in names if not NAME.match(n)]
    if bad:
        raise ValueError(f"invalid group name(s): {', '.join(bad)} (letters, digits, '_', '.', '-'; at most 50)")
    return names


class GroupsField(forms.CharField):
    """A comma-separated list of group names in a form, a list of names in the model."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated group names, e.g. core, contractors.")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        try:
            return parse_groups(str(value or ""))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
