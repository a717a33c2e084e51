"""Credential choice strategies (pure choose()) and conversation keys."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from credentials.models import Credential
from gateway.formats.conversation import conversation_key
from gateway.pool import Choice, choose

NOW = timezone.now()


def creds(n, **fields):
    return [Credential(pk=i + 1, provider="claude", **fields) for i in range(n)]


def test_round_robin_rotates_over_usable_credentials():
    pool = creds(3)
    picked = [choose(pool, NOW, set(), Choice(turn=t)).pk for t in range(6)]
    assert picked == [1, 2, 3, 1, 2, 3]


def test_cooling_disabled_and_excluded_credentials_are_skipped():
    pool = creds(4)
    pool[0].cooldown_until = NOW + timedelta(minutes=5)
    pool[1].status = Credential.Status.NEEDS_RELOGIN
    assert {choose(pool, NOW, {3}, Choice(turn=t)).pk for t in range(4)} == {4}
    pool[3].status = Credential.Status.DISABLED
    assert choose(pool, NOW, {3}, Choice()) is None


def test_an_expired_cooldown_makes_the_credential_usable_again():
    [c] = creds(1, cooldown_until=NOW - timedelta(seconds=1))
    assert choose([c], NOW, set(), Choice()) is c


def test_priority_fills_the_highest_priority_first():
    pool = creds(3)
    pool[1].priority = 5
    pool[2].priority = 5
    assert {choose(pool, NOW, set(), Choice("priority", turn=t)).pk for t in range(5)} == {2}
    pool[1].cooldown_until = NOW + timedelta(minutes=1)
    assert choose(pool, NOW, set(), Choice("priority")).pk == 3


def test_sticky_keeps_a_conversation_on_one_account_and_moves_when_it_cools():
    pool = creds(4)
    first = {choose(pool, NOW, set(), Choice("sticky", turn=t, conversation="conv-a")).pk for t in range(10)}
    assert len(first) == 1
    home = first.pop()
    others = {f"conv-{i}": choose(pool, NOW, set(), Choice("sticky", conversation=f"conv-{i}")).pk for i in range(40)}
    assert len(set(others.values())) > 1  # conversations spread over accounts
    pool[home - 1].cooldown_until = NOW + timedelta(minutes=1)
    moved = choose(pool, NOW, set(), Choice("sticky", conversation="conv-a")).pk
    assert moved != home
    unaffected = {k: v for k, v in others.items() if v != home}
    assert all(choose(pool, NOW, set(), Choice("sticky", conversation=k)).pk == v for k, v in unaffected.items())


def test_prefer_soonest_reset_spends_the_account_that_resets_first():
    pool = creds(3)
    pool[0].windows = {"7d": {"reset": NOW.timestamp() + 5 * 86400}}
    pool[1].windows = {"7d": {"reset": NOW.timestamp() + 3600}, "5h": {"reset": NOW.timestamp() + 7200}}
    picked = {choose(pool, NOW, set(), Choice(turn=t, prefer_soonest_reset=True)).pk for t in range(5)}
    assert picked == {2}


def test_conversation_key_reads_claude_code_and_codex_sessions():
    new = {"metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "a", "session_id": "s-1"})}}
    assert conversation_key({}, new, "key") == "s-1"
    old = {"metadata": {"user_id": "user_abc_account_def_session_1234-5678"}}
    assert conversation_key({}, old, "key") == "1234-5678"
    assert conversation_key({"session_id": "codex-1"}, {}, "key") == "codex-1"
    assert conversation_key({}, {"prompt_cache_key": "pck"}, "key") == "pck"
    assert conversation_key({}, {"messages": []}, "key") == "key"


def used(credential, five_hour, seven_day=0.0, five_hour_reset=None):
    """Give a credential windows at these percents, stored as the headers and the poll store them."""
    credential.windows = {"5h": {"utilization": five_hour / 100, "reset": five_hour_reset or NOW.timestamp() + 3600},
                          "7d": {"utilization": seven_day / 100, "reset": NOW.timestamp() + 86400}}


def test_headroom_prefers_the_most_room_left_in_the_binding_window():
    pool = creds(3)
    used(pool[0], 30, 10)
    used(pool[1], 10, 70)  # least used 5-hour window, but its weekly one binds
    used(pool[2], 40, 20)
    assert {choose(pool, NOW, set(), Choice("headroom", turn=t)).pk for t in range(6)} == {1}
    pool[0].cooldown_until = NOW + timedelta(minutes=1)
    assert choose(pool, NOW, set(), Choice("headroom")).pk == 3
    assert choose(pool, NOW, {3}, Choice("headroom")).pk == 2


def test_headroom_rotates_among_equals_and_counts_a_reset_window_as_empty():
    pool = creds(3)
    used(pool[0], 50)
    used(pool[1], 80, five_hour_reset=NOW.timestamp() - 1)  # its window has refilled since
    assert {choose(pool, NOW, set(), Choice("headroom", turn=t)).pk for t in range(6)} == {2, 3}


@pytest.mark.parametrize("strategy", ["round-robin", "priority", "sticky", "headroom"])
def test_an_account_past_the_cap_is_kept_for_when_nothing_else_is_ready(strategy):
    pool = creds(2)
    used(pool[0], 97)
    used(pool[1], 20)
    pool[0].priority = 9  # even the preferred account
    how = [Choice(strategy, turn=t, conversation=f"c{t}", max_utilization=95) for t in range(8)]
    assert {choose(pool, NOW, set(), h).pk for h in how} == {2}
    pool[1].cooldown_until = NOW + timedelta(minutes=1)
    assert choose(pool, NOW, set(), how[0]).pk == 1
    pool[1].cooldown_until = None
    assert choose(pool, NOW, {2}, how[0]).pk == 1
    if strategy != "headroom":  # (headroom would still prefer the emptier account)
        assert 1 in {choose(pool, NOW, set(), Choice(strategy, turn=t, max_utilization=99)).pk for t in range(8)}


def test_the_cap_comes_from_settings(settings):
    settings.PROXYHUB_POOL_MAX_UTILIZATION = 50
    pool = creds(2)
    used(pool[0], 60)
    assert {choose(pool, NOW, set(), Choice(turn=t)).pk for t in range(4)} == {2}
    settings.PROXYHUB_POOL_MAX_UTILIZATION = 95
    assert {choose(pool, NOW, set(), Choice(turn=t)).pk for t in range(4)} == {1, 2}
