"""List prices (USD per million tokens) for the seeded Claude models, so usage reports can
estimate what the traffic would have cost through the API. Only rows without any price are
filled: an admin's own figures win. GPT prices are left for the admin to enter."""
from decimal import Decimal

from django.db import migrations

# input, output, cache read (0.1 x input), cache write (5-minute: 1.25 x input)
TIERS = {
    "opus": ("5", "25", "0.50", "6.25"),
    "sonnet": ("3", "15", "0.30", "3.75"),
    "haiku": ("1", "5", "0.10", "1.25"),
}
PRICED = {
    "claude-opus-4-7": "opus", "claude-opus-4-6": "opus", "claude-opus-4-5-20251101": "opus",
    "claude-sonnet-4-6": "sonnet", "claude-sonnet-4-5-20250929": "sonnet",
    "claude-haiku-4-5-20251001": "haiku",
}
FIELDS = ("input_price", "output_price", "cache_read_price", "cache_write_price")


def seed(apps, schema_editor):
    Model = apps.get_model("credentials", "Model")
    unpriced = Model.objects.filter(name__in=PRICED, **{f"{f}__isnull": True for f in FIELDS})
    for model in unpriced:
        Model.objects.filter(pk=model.pk).update(**dict(zip(FIELDS, map(Decimal, TIERS[PRICED[model.name]]))))


class Migration(migrations.Migration):
    dependencies = [("credentials", "0004_credential_proxy_url")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
