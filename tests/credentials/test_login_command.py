"""``manage.py login claude|codex``: the wizard's flow in a terminal, fed through stdin."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from credentials.models import Credential, PendingLogin
from tests.credentials.conftest import approve, authorize_params

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class ApprovingStdin:
    """A non-TTY stdin whose line is what the admin pastes after approving the URL printed so far."""

    def __init__(self, fake, provider: str, out: io.StringIO, tamper=lambda s: s, **identity) -> None:
        self.fake, self.provider, self.out, self.tamper, self.identity = fake, provider, out, tamper, identity
        self.url = ""

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        self.url = self.out.getvalue().splitlines()[0]
        return self.tamper(approve(self.fake, self.provider, self.url, **self.identity)) + "\n"


def login(monkeypatch, oauth, provider, *args, tamper=lambda s: s, **identity):
    out = io.StringIO()
    stdin = ApprovingStdin(oauth, provider, out, tamper, **identity)
    monkeypatch.setattr(sys, "stdin", stdin)
    call_command("login", provider, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue(), stdin.url


def test_login_claude_prints_the_url_first_then_saves_the_account(monkeypatch, oauth):
    output, url = login(monkeypatch, oauth, "claude", "--label", "cli max", email="cli@example.com")
    lines = output.splitlines()
    assert lines[0] == url and url.startswith("https://claude.ai/oauth/authorize?")
    assert authorize_params(url)["code_challenge_method"] == "S256"
    credential = Credential.objects.get()
    assert (credential.email, credential.label) == ("cli@example.com", "cli max")
    assert f"Connected cli@example.com (Claude, account {credential.account_id}" in lines[-1]
    assert "token expires" in lines[-1]
    assert credential.access_token not in output and credential.refresh_token not in output
    assert not PendingLogin.objects.exists()


def test_login_codex_saves_email_account_plan_and_expiry(monkeypatch, oauth):
    output, url = login(monkeypatch, oauth, "codex", email="gpt@example.com", account_id="acct-cli", plan="pro")
    assert output.splitlines()[0] == url and url.startswith("https://auth.openai.com/oauth/authorize?")
    credential = Credential.objects.get()
    assert (credential.email, credential.account_id, credential.plan) == ("gpt@example.com", "acct-cli", "pro")
    last = output.splitlines()[-1]
    assert "Connected gpt@example.com (ChatGPT, account acct-cli, plan pro, token expires" in last
    for secret in (credential.access_token, credential.refresh_token, credential.id_token):
        assert secret not in output

    # A second login of the same account updates it.
    output, _ = login(monkeypatch, oauth, "codex", email="gpt@example.com", account_id="acct-cli", plan="pro")
    assert output.splitlines()[-1].startswith("Updated gpt@example.com")
    assert Credential.objects.count() == 1


def test_login_with_a_wrong_state_fails_cleanly(monkeypatch, oauth):
    with pytest.raises(CommandError, match="state does not match"):
        login(monkeypatch, oauth, "claude", tamper=lambda s: s.split("#")[0] + "#other")
    assert not Credential.objects.exists() and not PendingLogin.objects.exists()


def test_login_reports_a_refused_code(monkeypatch, oauth):
    oauth.add_fault("codex_token", "token_error", status=400, body={"error": "invalid_grant"})
    with pytest.raises(CommandError, match="ChatGPT refused the code .*invalid_grant"):
        login(monkeypatch, oauth, "codex")
    assert not Credential.objects.exists()


def test_login_with_nothing_pasted_fails(monkeypatch, oauth):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="Nothing was pasted"):
        call_command("login", "claude", stdout=io.StringIO())
    assert not PendingLogin.objects.exists()


@pytest.fixture
def subprocess_env(oauth):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYHUB_")}
    env.update(DATABASE_URL=database_url_of_the_test_db(), SECRET_KEY=settings.SECRET_KEY,
               PROXYHUB_ENCRYPTION_KEY=settings.PROXYHUB_ENCRYPTION_KEY,
               PROXYHUB_CLAUDE_TOKEN_URL=oauth.claude_token_url, PROXYHUB_CODEX_TOKEN_URL=oauth.codex_token_url)
    return env


def database_url_of_the_test_db() -> str:
    """DATABASE_URL of the test database, so the subprocess sees what the test sees."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.skip(f"no DATABASE_URL for {db['ENGINE']}")


def run_login(env, provider: str):
    return subprocess.Popen([sys.executable, "manage.py", "login", provider], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("provider", ["claude", "codex"])
def test_login_reads_the_paste_from_a_pipe(subprocess_env, oauth, provider):
    proc = run_login(subprocess_env, provider)
    url = proc.stdout.readline().strip()  # printed and flushed before the command waits for input
    assert authorize_params(url)["code_challenge_method"] == "S256"
    out, err = proc.communicate(approve(oauth, provider, url, email=f"{provider}-pipe@example.com") + "\n",
                                timeout=60)
    assert proc.returncode == 0, err
    assert f"Connected {provider}-pipe@example.com" in out
    assert Credential.objects.get().email == f"{provider}-pipe@example.com"


def test_login_errors_print_no_traceback(subprocess_env, oauth):
    proc = run_login(subprocess_env, "codex")
    proc.stdout.readline()
    out, err = proc.communicate("http://localhost:1455/auth/callback?error=access_denied\n", timeout=60)
    assert proc.returncode == 1
    assert "CommandError: The provider refused the login: access_denied" in err and "Traceback" not in err
    assert not Credential.objects.exists()
