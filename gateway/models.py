"""The gateway app's models live beside the code that writes and reads them, in gateway.usage."""
from __future__ import annotations

from gateway.shared.models import SharedEvent, SharedLease, SharedValue
from gateway.usage.models import UsageRecord, UsageRollup

__all__ = ["SharedEvent", "SharedLease", "SharedValue", "UsageRecord", "UsageRollup"]
