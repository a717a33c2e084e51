"""Credential choice strategies (pure choose()) and conversation keys."""
from __future__ import annotations

import json
from datetime import timedelta

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
