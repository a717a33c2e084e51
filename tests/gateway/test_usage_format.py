"""The usage tables' cell filter: rows read like their total line."""
from __future__ import annotations

from gateway.usage.templatetags.usage_format import cell


def test_report_cells_separate_thousands_and_keep_names() -> None:
    assert cell(127500) == "127,500"
    assert cell(7) == "7"
    assert cell(None) == "—"
    assert cell("sk-ph-ab12") == "sk-ph-ab12"
    assert cell(True) is True  # a flag is not a count
