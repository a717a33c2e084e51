"""Management commands: issue_key, import_credentials, usage_report, ensure_admin."""
from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_issue_key_prints_the_key_alone_on_the_last_line():
    from accounts.models import ApiKey
    from accounts.services import authenticate_api_key

    output = run("issue_key", "bob", "--models", "claude-*,gpt-5.5", "--name", "laptop")
    raw = output.strip().splitlines()[-1]
    assert raw.startswith("sk-ph-") and " " not in raw
    api_key = authenticate_api_key(raw)
    assert api_key.user.username == "bob" and api_key.name == "laptop"
    assert api_key.allowed_models == ["claude-*", "gpt-5.5"]
    stored = ApiKey.objects.get()
    assert raw not in json.dumps([stored.digest, stored.prefix])


def test_import_credentials_reads_claude_code_and_cliproxyapi_files(tmp_path):
    from credentials.models import Credential

    claude_code = tmp_path / ".credentials.json"
    claude_code.write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-AAA", "refreshToken": "sk-ant-ort01-BBB",
        "expiresAt": int((time.time() + 3600) * 1000), "scopes": ["user:inference"], "subscriptionType": "max"}}))
    cliproxy = tmp_path / "claude-me@example.com.json"
    cliproxy.write_text(json.dumps({"type": "claude", "access_token": "sk-ant-oat01-CCC",
                                    "refresh_token": "sk-ant-ort01-DDD", "email": "me@example.com",
                                    "expired": "2030-01-01T00:00:00Z"}))
    output = run("import_credentials", str(claude_code), str(cliproxy))
    assert output.count("imported claude credential") == 2
    assert "sk-ant" not in output
    creds = list(Credential.objects.order_by("id"))
    assert creds[0].plan == "max" and creds[0].access_token == "sk-ant-oat01-AAA"
    assert creds[1].email == "me@example.com" and creds[1].expires_at.year == 2030

    # Tokens are encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM credentials_credential")
        for access, refresh in cursor.fetchall():
            assert "sk-ant" not in access and "sk-ant" not in refresh

    # Importing the same account again updates it.
    cliproxy.write_text(json.dumps({"type": "claude", "access_token": "sk-ant-oat01-EEE",
                                    "refresh_token": "sk-ant-ort01-FFF", "email": "me@example.com"}))
    assert "updated claude credential" in run("import_credentials", str(cliproxy))
    assert Credential.objects.count() == 2


def test_import_credentials_rejects_unknown_files_without_echoing_them(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"secret": "sk-ant-oat01-ZZZ"}))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_credentials", str(bad), stdout=io.StringIO(), stderr=err)
    assert "unrecognised" in err.getvalue() and "sk-ant" not in err.getvalue()


def test_usage_report_groups_by_key_user_model_and_day(api_key_factory):
    from django.utils import timezone

    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    from decimal import Decimal

    from credentials.models import Model

    Model.objects.update_or_create(name="claude-sonnet-4-6", defaults={
        "provider": "claude", "input_price": Decimal(3), "output_price": Decimal(15),
        "cache_read_price": Decimal("0.3"), "cache_write_price": Decimal("3.75")})
    key_a, _ = api_key_factory("alice")
    key_b, _ = api_key_factory("bob")
    for key, model, tokens in ((key_a, "claude-sonnet-4-6", 10), (key_a, "gpt-5.5", 5), (key_b, "gpt-5.5", 7)):
        write_rows([UsageRow(created_at=timezone.now(), api_key_id=key.pk, user_id=key.user_id, key_prefix=key.prefix,
                             endpoint="messages", requested_model=model, input_tokens=tokens,
                             output_tokens=2, cache_read_tokens=1, cache_write_tokens=3)])
    by_key = json.loads(run("usage_report", "--by", "key", "--format", "json"))
    alice = next(r for r in by_key if r["user"] == "alice")
    assert alice == {"key_prefix": key_a.prefix, "key_name": "default", "user": "alice", "requests": 2,
                     "input_tokens": 15, "output_tokens": 4, "cache_read_tokens": 2, "cache_write_tokens": 6,
                     # only the Sonnet part is priced: (10 x 3 + 2 x 15 + 1 x 0.30 + 3 x 3.75) / 1e6
                     "estimated_cost_usd": 0.000072, "cache_hit_rate": round(2 / (15 + 2 + 6), 4)}
    by_model = json.loads(run("usage_report", "--by", "model", "--format", "json"))
    assert {r["model"]: r["requests"] for r in by_model} == {"claude-sonnet-4-6": 1, "gpt-5.5": 2}
    assert len(json.loads(run("usage_report", "--by", "day", "--format", "json"))) == 1
    csv_text = run("usage_report", "--by", "user", "--format", "csv")
    assert csv_text.splitlines()[0] == ("user,requests,input_tokens,output_tokens,cache_read_tokens,"
                                        "cache_write_tokens,estimated_cost_usd,cache_hit_rate")
    assert "alice" in run("usage_report", "--by", "user")


def test_usage_report_takes_a_range_of_days_or_times(api_key_factory):
    from datetime import timedelta

    from django.core.management.base import CommandError
    from django.utils import timezone

    from gateway.usage.rows import UsageRow
    from gateway.usage.store import write_rows

    key, _ = api_key_factory("alice")
    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    write_rows([UsageRow(created_at=today - timedelta(days=ago), api_key_id=key.pk, user_id=key.user_id,
                         key_prefix=key.prefix, endpoint="messages", requested_model="gpt-5.5", input_tokens=ago)
                for ago in (0, 1, 10, 40)])

    def requests(*args: str) -> int:
        return sum(r["requests"] for r in json.loads(run("usage_report", "--by", "user", "--format", "json", *args)))

    assert requests() == 4
    assert requests("--days", "1") == 1 and requests("--days", "2") == 2 and requests("--days", "30") == 3
    day = lambda ago: (today - timedelta(days=ago)).date().isoformat()  # noqa: E731
    assert requests("--since", day(40), "--until", day(1)) == 2          # the 40- and 10-day-old rows
    assert requests("--since", f"{day(1)}T11:30", "--until", f"{day(1)}T12:00") == 0
    assert requests("--since", f"{day(1)}T11:30", "--until", f"{day(1)}T12:30") == 1  # hours round outwards
    with pytest.raises(CommandError):
        run("usage_report", "--since", "yesterday")


def test_ensure_admin_creates_the_first_admin_once():
    from django.contrib.auth import get_user_model

    first = run("ensure_admin")
    assert "password:" in first
    assert get_user_model().objects.get(username="admin").is_superuser
    assert run("ensure_admin") == ""
