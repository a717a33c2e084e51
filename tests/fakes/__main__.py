"""Run the fake upstreams by hand, to point a real ProxyHub (and real clients) at them.

    .venv/bin/python -m tests.fakes [EMAIL]

Prints the environment to export for ProxyHub and writes importable token files
for one Claude and one Codex account to the current directory.
"""
from __future__ import annotations

import json
import sys
import time

from tests.fakes import FakeUpstreams


def main() -> None:
    email = sys.argv[1] if len(sys.argv) > 1 else "team@example.com"
    fake = FakeUpstreams().start()
    claude = fake.issue_claude_tokens(email=email)
    codex = fake.issue_codex_tokens(email=email)
    with open("claude-fake.json", "w") as f:
        json.dump({"type": "claude", "email": email, "access_token": claude["access_token"],
                   "refresh_token": claude["refresh_token"]}, f)
    with open("codex-fake-auth.json", "w") as f:
        json.dump({"tokens": {k: codex[k] for k in ("id_token", "access_token", "refresh_token")}}, f)
    print(f"export PROXYHUB_CLAUDE_BASE_URL={fake.claude_base_url}")
    print(f"export PROXYHUB_CLAUDE_TOKEN_URL={fake.claude_token_url}")
    print(f"export PROXYHUB_CODEX_BASE_URL={fake.codex_base_url}")
    print(f"export PROXYHUB_CODEX_TOKEN_URL={fake.codex_token_url}")
    print(f"export PROXYHUB_CLAUDE_USAGE_URL={fake.claude_usage_url}")
    print(f"export PROXYHUB_CODEX_USAGE_URL={fake.codex_usage_url}")
    print("# token files: claude-fake.json codex-fake-auth.json", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
