import json
from tests.integration.test_translation_matrix import *  # noqa
def test_dbg(gateway, raw_key, credentials, fake):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>Today is Monday.</system-reminder>"},
                                     {"type": "text", "text": "Use the tool to run ls", "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "Per-turn control: prefer Bash."},
    ]
    first = claude_code_post(gateway, raw_key, claude_code_body(messages))
    print(json.dumps(fake.requests("codex")[-1].json, indent=1)[:3000])
    print(first)
    assert 0
