"""Seed the catalog with the current Claude and GPT models. Admins add new ones without a release."""
from django.db import migrations

MODELS = [
    # name, display name, provider, max output tokens, adaptive thinking, aliases
    ("claude-opus-4-7", "Claude Opus 4.7", "claude", 64000, True, ["opus"]),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "claude", 64000, True, ["sonnet"]),
    ("claude-opus-4-6", "Claude Opus 4.6", "claude", 64000, True, []),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "claude", 32000, False, ["claude-haiku-4-5", "haiku"]),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "claude", 64000, False, ["claude-sonnet-4-5"]),
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "claude", 64000, False, ["claude-opus-4-5"]),
    ("gpt-5.5", "GPT-5.5", "codex", 128000, False, []),
    ("gpt-5.4", "GPT-5.4", "codex", 128000, False, []),
    ("gpt-5.4-mini", "GPT-5.4 mini", "codex", 128000, False, []),
]


def seed(apps, schema_editor):
    Model = apps.get_model("credentials", "Model")
    for name, display, provider, max_out, adaptive, aliases in MODELS:
        Model.objects.get_or_create(name=name, defaults={
            "display_name": display, "provider": provider, "max_output_tokens": max_out,
            "adaptive_thinking": adaptive, "aliases": aliases,
        })


def unseed(apps, schema_editor):
    apps.get_model("credentials", "Model").objects.filter(name__in=[m[0] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("credentials", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
