"""The gateway app's models live beside the code that writes and reads them, in gateway.usage."""
from __future__ import annotations

from gateway.usage.models import UsageRecord, UsageRollup

__all__ = ["UsageRecord", "UsageRollup"]
