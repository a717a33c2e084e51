"""Benchmark the gateway: requests per second through /v1/messages against a fast fake upstream.

    .venv/bin/python bench/run.py [--server daphne|uvicorn] [--concurrency 16] [--seconds 10] [--stream]

Starts the fake upstream and the gateway (fresh SQLite in a temp dir, one
credential, one key) as separate processes, drives it with aiohttp for a fixed
time, and prints throughput and latency percentiles. Everything runs on
127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(env: dict[str, str], tmp: Path) -> str:
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    token_file = tmp / "claude-bench.json"
    token_file.write_text(json.dumps({"type": "claude", "access_token": "sk-ant-oat01-bench",
                                      "refresh_token": "sk-ant-ort01-bench", "email": "bench@example.com",
                                      "expired": "2099-01-01T00:00:00Z"}))
    subprocess.run([*manage, "import_credentials", str(token_file)], env=env, check=True, capture_output=True)
    out = subprocess.run([*manage, "issue_key", "bench"], env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


async def load(url: str, key: str, concurrency: int, seconds: float, stream: bool) -> list[float]:
    body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "Hello"}]}).encode()
    headers = {"x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            start = time.monotonic()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
                    continue
            latencies.append(time.monotonic() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    if errors:
        print(f"errors: {errors}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="proxyhub-bench-"))
    up_port, gw_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}", "SECRET_KEY": "bench",
           "PROXYHUB_CLAUDE_BASE_URL": f"http://127.0.0.1:{up_port}", "LOG_LEVEL": "WARNING"}
    key = prepare(env, tmp)
    bin_dir = Path(PY).parent
    server_cmd = ([str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(gw_port), "proxyhub.asgi:application"]
                  if args.server == "daphne" else
                  [str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(gw_port), "--log-level", "warning",
                   "--no-access-log", "proxyhub.asgi:application"])
    procs = [subprocess.Popen([PY, str(ROOT / "bench" / "upstream.py"), str(up_port)], env=env),
             subprocess.Popen(server_cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)]
    try:
        wait_listening(up_port)
        wait_listening(gw_port)
        url = f"http://127.0.0.1:{gw_port}/v1/messages"
        asyncio.run(load(url, key, args.concurrency, 1.0, args.stream))  # warm up caches and pools
        cpu_before = cpu_seconds(procs[1].pid)
        latencies = asyncio.run(load(url, key, args.concurrency, args.seconds, args.stream))
        cpu_used = cpu_seconds(procs[1].pid) - cpu_before
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    latencies.sort()
    n = len(latencies)
    print(f"server={args.server} stream={args.stream} concurrency={args.concurrency} seconds={args.seconds}")
    print(f"requests={n} throughput={n / args.seconds:.0f} req/s "
          f"p50={latencies[n // 2] * 1000:.1f} ms p99={latencies[int(n * 0.99)] * 1000:.1f} ms "
          f"mean={statistics.fmean(latencies) * 1000:.1f} ms")
    # CPU time per request is steadier than throughput on a shared 2-core machine.
    print(f"gateway cpu={cpu_used / max(n, 1) * 1e6:.0f} us/request")


if __name__ == "__main__":
    main()
