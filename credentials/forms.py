"""Forms of the connect wizard and the token-file upload (credentials.views)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile


class UnechoedTextInput(forms.TextInput):
    """A visible text input that never sends a submitted value back to the browser.

    The pasted code is single-use, but it is still a credential for a few minutes:
    a form re-shown after an error starts empty rather than echoing it.
    """

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, None, attrs)


class PasteForm(forms.Form):
    pasted = forms.CharField(
        label="Code", max_length=4096, strip=True,
        widget=UnechoedTextInput(attrs={"class": "vTextField", "autocomplete": "off", "spellcheck": "false",
                                      "autofocus": True}),
    )
    label = forms.CharField(
        label="Label", max_length=100, required=False,
        help_text="Optional: a name for this account in ProxyHub. Defaults to its email.",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )

    def __init__(self, *args: Any, paste_label: str = "Code", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pasted"].label = paste_label


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (the pattern from Django's file-upload docs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".json,application/json"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single_clean = super().clean
        if isinstance(data, (list, tuple)) and data:
            return [single_clean(item, initial) for item in data]
        if not data and not self.required:
            return []
        # An empty list must still hit the "required" check (the docs' version lets it through).
        return [single_clean(data or None, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="Token files",
        help_text=("CLIProxyAPI claude-*.json / codex-*.json, Claude Code .credentials.json or Codex CLI "
                   "auth.json. Choose several at once if you like; accounts seen before are updated."),
    )
    label = forms.CharField(
        label="Label", max_length=100, required=False,
        help_text="Optional: a name for the imported account(s). Defaults to the email.",
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )
