"""Reading the subscription-usage answers into the stored window shape, merging, and the public view. Pure."""
from __future__ import annotations

import pytest

from credentials import window_state as ws
from gateway.upstream.ratelimits import codex_windows

RESET_ISO, RESET_UNIX = "2026-09-28T23:00:00Z", 1790636400.0


def test_claude_usage_keeps_five_hour_weekly_and_model_scoped_windows():
    fresh = ws.claude_usage({
        "five_hour": {"utilization": 12, "resets_at": RESET_ISO},
        "seven_day": {"used_percentage": 35.5, "resets_at": 1790086400},
        "seven_day_sonnet": {"utilization": 56, "resets_at": None},
        "seven_day_opus": None,
        "extra_usage": {"is_enabled": False},
    })
    assert fresh == {"5h": {"utilization": 0.12, "reset": RESET_UNIX},
                     "7d": {"utilization": 0.355, "reset": 1790086400.0},
                     "7d_sonnet": {"utilization": 0.56}, "7d_opus": None}


def test_claude_limits_fill_in_windows_the_named_keys_lack():
    fresh = ws.claude_usage({
        "five_hour": {"utilization": 20, "resets_at": RESET_ISO},
        "limits": [{"kind": "session", "percent": 99, "resets_at": 1},  # the named key wins
                   {"kind": "weekly_all", "percent": 40, "resets_at": 1790086400},
                   {"kind": "weekly_scoped", "percent": 80, "resets_at": "2026-10-02T18:00:00+00:00",
                    "scope": {"model": {"display_name": "Opus 4"}}},
                   {"kind": "weekly_scoped", "percent": 5},  # no scope: nothing to name it by
                   "junk"],
    })
    assert fresh["5h"]["utilization"] == 0.2
    assert fresh["7d"] == {"utilization": 0.4, "reset": 1790086400.0}
    assert fresh["7d_opus_4"]["utilization"] == 0.8 and fresh["7d_opus_4"]["reset"] == 1790964000.0
    assert set(fresh) == {"5h", "7d", "7d_opus_4"}


@pytest.mark.parametrize("answer", [None, [], "x", {"five_hour": "full"}, {"five_hour": {"resets_at": RESET_ISO}},
                                    {"limits": {"kind": "session"}}])
def test_claude_usage_shapes_it_does_not_understand_give_nothing(answer):
    assert ws.claude_usage(answer) == {}


def test_codex_usage_names_windows_by_length_not_slot():
    fresh = ws.codex_usage({"plan_type": "pro", "rate_limit": {
        "primary_window": {"used_percent": 42, "limit_window_seconds": 18000, "reset_at": 1790000000},
        "secondary_window": {"used_percent": 87, "limit_window_seconds": 604800, "reset_after_seconds": 100}}},
        now=1000.0)
    assert fresh == {"5h": {"utilization": 0.42, "reset": 1790000000.0, "window_minutes": 300.0},
                     "7d": {"utilization": 0.87, "reset": 1100.0, "window_minutes": 10080.0}, "plan": "pro"}
    weekly_only = ws.codex_usage({"rate_limit": {
        "primary_window": {"used_percent": 30, "limit_window_seconds": 604800, "reset_at": 5},
        "secondary_window": None}})
    assert set(weekly_only) == {"7d"}


def test_headers_name_a_weekly_primary_window_the_same_way():
    headers = {"x-codex-primary-used-percent": "30", "x-codex-primary-window-minutes": "10080",
               "x-codex-primary-reset-at": "5"}
    assert set(codex_windows(headers)) == {"7d"}


@pytest.mark.parametrize("minutes, name", [(300, "5h"), (10080, "7d"), (1440, "1d"), (120, "2h"), (90, "90m")])
def test_window_names(minutes, name):
    assert ws.window_name(minutes) == name


def test_merge_replaces_named_windows_keeps_the_rest_and_drops_nulls():
    stored = {"5h": {"utilization": 0.1}, "7d_sonnet": {"utilization": 0.5}, "7d_opus": {"utilization": 0.2},
              "status": "allowed"}
    merged = ws.merge(stored, {"5h": {"utilization": 0.3}, "7d_opus": None})
    assert merged == {"5h": {"utilization": 0.3}, "7d_sonnet": {"utilization": 0.5}, "status": "allowed"}
    assert stored["5h"] == {"utilization": 0.1}  # not mutated
    assert ws.merge(None, {"7d": {"utilization": 1}}) == {"7d": {"utilization": 1}}


def test_window_list_is_the_public_view_in_a_stable_order():
    stored = {"status": "allowed", "reset": 5.0, "plan": "pro", "7d_sonnet": {"utilization": 0.564},
              "7d": {"utilization": 0.35, "reset": RESET_UNIX}, "5h": {"utilization": 0.12}, "broken": {}}
    assert ws.window_list(stored) == [
        {"name": "5h", "used_percent": 12.0, "resets_at": None},
        {"name": "7d", "used_percent": 35.0, "resets_at": "2026-09-28T23:00:00+00:00"},
        {"name": "7d_sonnet", "used_percent": 56.4, "resets_at": None},
    ]
    assert ws.window_list(None) == []


def test_binding_percent_is_the_fullest_running_window():
    stored = {"5h": {"utilization": 0.97, "reset": 100.0}, "7d": {"utilization": 0.4, "reset": 900.0},
              "7d_sonnet": {"utilization": 0.6}}
    assert ws.binding_percent(stored, now=50.0) == pytest.approx(97.0)
    assert ws.binding_percent(stored, now=150.0) == pytest.approx(60.0)  # the 5-hour window has refilled
    assert ws.binding_percent({"plan": "pro"}, now=0.0) is None
