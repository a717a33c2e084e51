"""The relay's price: ProxyHub against a minimal pass-through and the bare upstream, with wrk.

    bench/run [--seconds 10] [--repeat 1] [--workers 1,2] [--no-docs]

Starts nginx serving canned Anthropic and Codex answers (bench/nginx.py), a
scratch SQLite ProxyHub with a real API key and one credential per provider
(far expiry: no refresh), and bench/passthrough.py on the same server command
and worker count. wrk drives each at 16 connections (non-streaming and
streaming, 50 events) and at 1 connection (latency). Prints the table and
writes it under "## Relay" in docs/PERFORMANCE.md. Everything binds 127.0.0.1
and stops by itself.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nginx  # noqa: E402
from canned import CODEX_MODEL, MODEL, STREAM_EVENTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python")
DOCS = ROOT / "docs" / "PERFORMANCE.md"
TARGETS = {"nonstream": 4000, "stream": 3000, "ratio": 0.5, "scaling": 1.4, "added_p50_ms": 0.7, "rss_mb": 150}


def server_command(app: str, port: int, workers: int) -> list[str]:
    """The production command of deploy/serve (the README's), for the pass-through; ProxyHub runs deploy/serve itself."""
    return [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "on", "--no-access-log",
            "--timeout-graceful-shutdown", "30"]


@dataclass(frozen=True)
class Scenario:
    """One kind of request, as sent to ProxyHub and to the pass-through / nginx (upstream path)."""

    name: str
    path: str
    upstream_path: str
    body: dict[str, object]
    stream: bool
    expect: bytes  # a sign the answer is the real thing, checked once before each load

    def headers(self, key: str) -> str:
        lines = ["content-type: application/json", "anthropic-version: 2023-06-01", f"x-api-key: {key}",
                 f"accept: {'text/event-stream' if self.stream else 'application/json'}"]
        return "\n".join(lines)


HELLO = [{"role": "user", "content": "Hello"}]
NONSTREAM = Scenario("nonstream", "/v1/messages", "/v1/messages?beta=true",
                     {"model": MODEL, "max_tokens": 64, "messages": HELLO}, False, b'"end_turn"')
STREAM = Scenario("stream", "/v1/messages", "/v1/messages?beta=true",
                  {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True}, True, b"event: message_stop")
CODEX = Scenario("codex", "/v1/responses", "/responses",
                 {"model": CODEX_MODEL, "input": "Hello", "stream": True}, True, b"event: response.completed")


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_ms: float = 0.0  # server CPU (all its processes) per request
    spread: str = ""  # connections per worker, e.g. "16" or "9+7"


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workers: int
    requests: int = 0
    peak_rss_mb: list[float] = field(default_factory=list)


# --- processes -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def worker_pids(server: Server) -> list[int]:
    """The serving processes: the largest ones of the tree (uvicorn's supervisor and helpers are small)."""
    pids = process_tree(server.proc.pid)
    return sorted(pids, key=peak_rss_mb, reverse=True)[:server.workers]


def start_server(name: str, app: str, workers: int, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    if name == "proxyhub":  # exactly as production starts it (migrations were run by prepare())
        cmd = [str(ROOT / "deploy" / "serve")]
        env = {**env, "PROXYHUB_SERVER": "uvicorn", "PROXYHUB_WORKERS": str(workers), "PROXYHUB_PORT": str(port),
               "PROXYHUB_HOST": "127.0.0.1"}
    else:
        cmd = server_command(app, port, workers)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    wait_listening(port, proc)
    return Server(name, proc, port, workers)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- ProxyHub's scratch world ----------------------------------------------------------------------

SEED = """
from datetime import timedelta
from django.utils import timezone
from credentials.models import Credential
for provider in ("claude", "codex"):
    Credential.objects.create(provider=provider, label=f"bench-{provider}", email=f"bench-{provider}@example.com",
                              account_id=f"acct-bench-{provider}", access_token=f"bench-{provider}-access",
                              refresh_token=f"bench-{provider}-refresh",
                              expires_at=timezone.now() + timedelta(days=3650))
"""


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PY, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def prepare(env: dict[str, str]) -> str:
    """Migrate the scratch database, add the credentials, and return a fresh API key."""
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", SEED)
    return manage(env, "issue_key", "bench").strip().splitlines()[-1]


def settle(database: Path, quiet: float = 1.0, timeout: float = 30) -> None:
    """Wait until the usage row count has not changed for ``quiet`` seconds."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            count = usage_rows(database)
        except sqlite3.Error:  # locked by the writer right now
            count = -2
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def usage_rows(database: Path) -> int:
    """Usage rows in the scratch database (read with sqlite3: the server has stopped and flushed)."""
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT COUNT(*) FROM gateway_usagerecord").fetchone()[0])


# --- load --------------------------------------------------------------------------------------------

def connection_spread(port: int) -> str:
    """Established connections to ``port`` per serving process, largest first, e.g. "9+7"."""
    try:
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
    except OSError:  # no iproute2: the spread is unknown, the measurement still counts
        return "?"
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return "+".join(str(n) for n in sorted(counts.values(), reverse=True)) or "?"


def check(port: int, scenario: Scenario, key: str, path: str) -> None:
    """One request by hand: the answer must be a 200 carrying the real thing, or the numbers mean nothing."""
    headers = dict(line.split(": ", 1) for line in scenario.headers(key).splitlines())
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(scenario.body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
    if scenario.expect not in body:
        raise SystemExit(f"{path} on port {port} answered something else:\n{body[:500]!r}")


def wrk(port: int, path: str, scenario: Scenario, key: str, connections: int, seconds: int,
        tmp: Path) -> dict[str, float]:
    body_file = tmp / f"{scenario.name}.json"
    body_file.write_text(json.dumps(scenario.body))
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_HEADERS": scenario.headers(key)}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(round(seconds), 1)}s", "--timeout", "10s",
           "-s", str(ROOT / "bench" / "report.lua"), f"http://127.0.0.1:{port}{path}"]
    load = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds / 2)
    spread = connection_spread(port)  # which worker holds each of wrk's keep-alive connections
    out, err = load.communicate()
    if load.returncode:
        raise SystemExit(f"wrk failed: {err or out}")
    match = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    stats: dict[str, float] = json.loads(match[1])
    stats["spread"] = spread  # type: ignore[assignment]
    if stats["status_errors"] or stats["socket_errors"]:
        raise SystemExit(f"{path} on port {port}: {stats['status_errors']} non-2xx answers, "
                         f"{stats['socket_errors']} socket errors\n{out}")
    return stats


def measure(server: Server | None, port: int, scenario: Scenario, key: str, connections: int,
            args: argparse.Namespace, tmp: Path) -> Result:
    """The best of ``--repeat`` runs (a shared machine only ever makes a run slower), after a warm-up."""
    path = scenario.path if server is not None and server.name == "proxyhub" else scenario.upstream_path
    check(port, scenario, key, path)
    runs: list[Result] = []
    for _ in range(args.repeat):
        warm = wrk(port, path, scenario, key, connections, args.warmup, tmp)
        pids = process_tree(server.proc.pid) if server else []
        cpu_before = cpu_seconds(pids)
        stats = wrk(port, path, scenario, key, connections, args.seconds, tmp)
        cpu = cpu_seconds(pids) - cpu_before
        n = int(stats["requests"])
        if server is not None:
            server.requests += n + int(warm["requests"]) + 1
        runs.append(Result(n / (stats["duration_us"] / 1e6), stats["p50_us"] / 1000, stats["p99_us"] / 1000, n,
                           cpu / max(n, 1) * 1000, str(stats["spread"])))
    best = max(runs, key=lambda r: r.rps) if connections > 1 else min(runs, key=lambda r: r.p50_ms)
    who = server.name if server else "nginx"
    print(f"  {who:<11} {scenario.name:<9} c={connections:<3} {best.rps:8.0f} req/s  p50 {best.p50_ms:6.2f} ms"
          f"  p99 {best.p99_ms:6.2f} ms  cpu {best.cpu_ms:5.2f} ms/req  conns {best.spread}", flush=True)
    return best


# --- the run -----------------------------------------------------------------------------------------

def bench_env(tmp: Path, upstream: str) -> dict[str, str]:
    """A scratch world: its own database, journal and metrics directory; every upstream URL is nginx."""
    (tmp / "metrics").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}", "SECRET_KEY": "bench-secret-key",
            "DEBUG": "false", "LOG_LEVEL": "WARNING", "PROXYHUB_JOURNAL_DIR": str(tmp / "journal"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
            "PROXYHUB_CLAUDE_BASE_URL": upstream, "PROXYHUB_CODEX_BASE_URL": upstream,
            "PROXYHUB_CLAUDE_TOKEN_URL": f"{upstream}/oauth/token", "PROXYHUB_CLAUDE_TOKEN_FALLBACK_URL": "",
            "PROXYHUB_CODEX_TOKEN_URL": f"{upstream}/oauth/token", "PROXYHUB_WINDOW_POLL_SECONDS": "0",
            "BENCH_UPSTREAM": upstream,
            "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    nginx_port = free_port()
    upstream = f"http://127.0.0.1:{nginx_port}"
    nginx_proc = nginx.start(tmp / "nginx", nginx_port)
    env = bench_env(tmp, upstream)
    results: dict[str, object] = {}
    try:
        wait_listening(nginx_port, None)
        key = prepare(env)
        print("nginx direct (the floor):", flush=True)
        for scenario in (NONSTREAM, STREAM):
            results[f"nginx/{scenario.name}/16"] = measure(None, nginx_port, scenario, key, 16, args, tmp)
        results["nginx/nonstream/1"] = measure(None, nginx_port, NONSTREAM, key, 1, args, tmp)
        answered = 0
        for workers in args.workers:
            print(f"{workers} worker(s):", flush=True)
            proxyhub = start_server("proxyhub", "proxyhub.asgi:application", workers, env, tmp / "proxyhub.log")
            passthrough = start_server("passthrough", "passthrough:app", workers, env, tmp / "passthrough.log")
            try:
                # Back to back, so both see the same machine load.
                for scenario, connections in ((NONSTREAM, 1), (NONSTREAM, 16), (STREAM, 16), (CODEX, 16)):
                    for server in (passthrough, proxyhub):
                        # The previous run's usage rows are still being written: let that finish, or
                        # this run pays for the last one (it tripled the 1-connection p50).
                        settle(tmp / "bench.sqlite3")
                        results[f"{server.name}/{scenario.name}/{connections}/{workers}"] = measure(
                            server, server.port, scenario, key, connections, args, tmp)
                for server in (proxyhub, passthrough):
                    results[f"{server.name}/rss/{workers}"] = max(peak_rss_mb(p) for p in worker_pids(server))
            finally:
                stop(proxyhub.proc)
                stop(passthrough.proc)
            answered += proxyhub.requests
        results["usage"] = (usage_rows(tmp / "bench.sqlite3"), answered)
    finally:
        stop(nginx_proc)
    return results


# --- the profile -------------------------------------------------------------------------------------

def profile(args: argparse.Namespace, tmp: Path) -> None:
    """py-spy on one ProxyHub worker under wrk load: a flame graph and the top frames by share of samples."""
    scenario = {"nonstream": NONSTREAM, "stream": STREAM, "codex": CODEX}[args.profile]
    nginx_port = free_port()
    upstream = f"http://127.0.0.1:{nginx_port}"
    nginx_proc = nginx.start(tmp / "nginx", nginx_port)
    env = bench_env(tmp, upstream)
    try:
        key = prepare(env)
        server = start_server("proxyhub", "proxyhub.asgi:application", 1, env, tmp / "proxyhub.log")
        try:
            check(server.port, scenario, key, scenario.path)
            wrk(server.port, scenario.path, scenario, key, 16, args.warmup, tmp)
            body_file = tmp / f"{scenario.name}.json"
            load = subprocess.Popen(
                ["wrk", "-t1", "-c16", f"-d{args.seconds + 2}s", "-s", str(ROOT / "bench" / "report.lua"),
                 f"http://127.0.0.1:{server.port}{scenario.path}"],
                env={**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_HEADERS": scenario.headers(key)},
                stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            out = Path(args.profile_out or tmp / f"profile-{scenario.name}")
            spy = [str(BIN / "py-spy"), "record", "--pid", str(worker_pids(server)[0]), "--duration",
                   str(args.seconds), "--rate", "250", "--nonblocking"]
            subprocess.run([*spy, "--format", "raw", "-o", f"{out}.txt"], check=True, capture_output=True)
            load.communicate()
        finally:
            stop(server.proc)
    finally:
        stop(nginx_proc)
    print(f"collapsed stacks: {out}.txt (render with flamegraph.pl or speedscope; or py-spy record -o x.svg)")
    print("\n".join(summarize(Path(f"{out}.txt"))))


COMPONENTS = (  # leaf first: the first frame that matches names where a sample's time went
    ("json/", "JSON"), ("orjson", "JSON"), ("gateway/fastjson.py", "JSON"),
    ("gateway/formats/sse.py", "SSE parsing and metering"), ("gateway/formats/meter.py", "SSE parsing and metering"),
    ("uvicorn/", "server I/O (uvicorn, httptools)"), ("httptools", "server I/O (uvicorn, httptools)"),
    ("aiohttp/", "upstream client (aiohttp)"),
    ("gateway/usage/", "usage hand-off (journal, queue, metrics)"),
    ("django/", "Django (ORM, settings, signals)"), ("channels/", "Channels routing"),
    ("gateway/", "other gateway code (auth, pool, routing, bodies)"), ("accounts/", "other gateway code (auth, pool, routing, bodies)"),
    ("credentials/", "other gateway code (auth, pool, routing, bodies)"), ("proxyhub/", "other gateway code (auth, pool, routing, bodies)"),
)


def component(frames: list[str]) -> str:
    if any("Thread._bootstrap" in f for f in frames):
        return "usage writer thread (database)" if any("gateway/usage/" in f for f in frames) else "other threads"
    if frames[-1].startswith("Runner.run "):  # uvloop's own (native) work: polling, callbacks
        return "event loop (uvloop, native)"
    for frame in reversed(frames):
        for needle, name in COMPONENTS:
            if needle in frame:
                return name
    return "event loop and interpreter (no library frame)"


def _shares(collapsed: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Shares of samples by component and by leaf function, from py-spy's raw (collapsed) output."""
    parts: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n, frames = int(count), stack.split(";")
        total += n
        leaf = re.sub(r" \((?:.*/)?([^/()]*?):\d+\)$", r" (\1)", frames[-1])
        own[leaf] = own.get(leaf, 0) + n
        parts[component(frames)] = parts.get(component(frames), 0) + n
    return ({k: v / max(total, 1) for k, v in parts.items()}, {k: v / max(total, 1) for k, v in own.items()})


def summarize(*profiles: Path, top: int = 6) -> list[str]:
    """Where the time went, side by side for several profiles, and each one's top functions by own time."""
    shares = [_shares(p) for p in profiles]
    names = sorted({k for parts, _ in shares for k in parts}, key=lambda k: -sum(p.get(k, 0) for p, _ in shares))
    lines = ["| Where the time went | " + " | ".join(p.stem for p in profiles) + " |",
             "|---|" + "---:|" * len(profiles)]
    lines += [f"| {k} | " + " | ".join(f"{parts.get(k, 0):.0%}" for parts, _ in shares) + " |" for k in names]
    lines.append("")
    for path, (_, own) in zip(profiles, shares):
        best = sorted(own.items(), key=lambda kv: -kv[1])[:top]
        lines.append(f"- {path.stem}: " + ", ".join(f"`{k}` {v:.0%}" for k, v in best))
    return lines


# --- the table ----------------------------------------------------------------------------------------

def _fmt(value: float, unit: str = "") -> str:
    if unit == "rps":
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}×"
    return f"{value:.2f}"


def table(results: dict[str, object], workers: list[int]) -> list[str]:
    def r(name: str) -> Result:
        value = results[name]
        assert isinstance(value, Result)
        return value

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    w1, wn = workers[0], workers[-1]
    head = "| Measure | " + " | ".join(f"{w} worker{'s' if w > 1 else ''}" for w in workers) + " | Target | Met |"
    lines = [head, "|---|" + "---|" * len(workers) + "---|---|"]

    def row(label: str, values: list[float], unit: str, target: str, ok: bool | None) -> None:
        cells = " | ".join(_fmt(v, unit) for v in values)
        lines.append(f"| {label} | {cells} | {target} | {'' if ok is None else met(ok)} |")

    best = {s: max(r(f"proxyhub/{s}/16/{w}").rps for w in workers) for s in ("nonstream", "stream")}
    row("ProxyHub non-streaming, req/s (16 conn)", [r(f"proxyhub/nonstream/16/{w}").rps for w in workers], "rps",
        f"≥ {TARGETS['nonstream']:,}", best["nonstream"] >= TARGETS["nonstream"])
    row(f"ProxyHub streaming ({STREAM_EVENTS} events), req/s", [r(f"proxyhub/stream/16/{w}").rps for w in workers],
        "rps", f"≥ {TARGETS['stream']:,}", best["stream"] >= TARGETS["stream"])
    row(f"ProxyHub Codex stream ({STREAM_EVENTS} events, /v1/responses), req/s",
        [r(f"proxyhub/codex/16/{w}").rps for w in workers], "rps", "", None)
    for s, label in (("nonstream", "non-streaming"), ("stream", "streaming"), ("codex", "Codex stream")):
        row(f"Pass-through {label}, req/s", [r(f"passthrough/{s}/16/{w}").rps for w in workers], "rps", "", None)
    for s, label in (("nonstream", "non-streaming"), ("stream", "streaming")):
        ratios = [r(f"proxyhub/{s}/16/{w}").rps / r(f"passthrough/{s}/16/{w}").rps for w in workers]
        row(f"ProxyHub ÷ pass-through, {label}", ratios, "x", f"≥ {TARGETS['ratio']}×",
            min(ratios) >= TARGETS["ratio"])
    if len(workers) > 1:
        for name, label in (("proxyhub", "ProxyHub"), ("passthrough", "Pass-through")):
            scale = r(f"{name}/nonstream/16/{wn}").rps / r(f"{name}/nonstream/16/{w1}").rps
            target = f"≥ {TARGETS['scaling']}×" if name == "proxyhub" else ""
            verdict = met(scale >= TARGETS["scaling"]) if name == "proxyhub" else ""
            lines.append(f"| {label}: {wn} workers ÷ {w1}, non-streaming | " + " | " * (len(workers) - 1)
                         + f"{_fmt(scale, 'x')} | {target} | {verdict} |")
    nginx_p50 = r("nginx/nonstream/1").p50_ms
    row("p50 at 1 connection, ms: ProxyHub", [r(f"proxyhub/nonstream/1/{w}").p50_ms for w in workers], "", "", None)
    row("p50 at 1 connection, ms: pass-through", [r(f"passthrough/nonstream/1/{w}").p50_ms for w in workers],
        "", "", None)
    added = [r(f"proxyhub/nonstream/1/{w}").p50_ms - nginx_p50 for w in workers]
    row(f"Added p50, ms: ProxyHub − nginx direct ({nginx_p50:.2f} ms)", added, "",
        f"≤ {TARGETS['added_p50_ms']} ms", min(added) <= TARGETS["added_p50_ms"])
    row("Added p50, ms: ProxyHub − pass-through",
        [r(f"proxyhub/nonstream/1/{w}").p50_ms - r(f"passthrough/nonstream/1/{w}").p50_ms for w in workers],
        "", "", None)
    cpu = [f"{r(f'proxyhub/nonstream/16/{w}').cpu_ms:.2f} / {r(f'proxyhub/stream/16/{w}').cpu_ms:.2f}"
           for w in workers]
    lines.append(f"| ProxyHub CPU per request, ms (non-streaming / streaming) | {' | '.join(cpu)} |  |  |")
    spread = [f"{r(f'proxyhub/nonstream/16/{w}').spread} / {r(f'passthrough/nonstream/16/{w}').spread}" for w in workers]
    lines.append(f"| wrk's 16 connections per worker, non-streaming (ProxyHub / pass-through) | {' | '.join(spread)} |  |  |")
    rss = [float(results[f"proxyhub/rss/{w}"]) for w in workers]  # type: ignore[arg-type]
    row("ProxyHub peak RSS per worker, MB", rss, "", f"≤ {TARGETS['rss_mb']} MB", max(rss) <= TARGETS["rss_mb"])
    rows, answered = results["usage"]  # type: ignore[misc]
    lines.append(f"\nnginx direct: {r('nginx/nonstream/16').rps:,.0f} req/s non-streaming, "
                 f"{r('nginx/stream/16').rps:,.0f} streaming (16 connections). "
                 f"Usage rows written: {rows:,}; wrk and the checks counted {answered:,} complete answers "
                 "(requests cut off when wrk stops have rows too).")
    return lines


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores (`nproc` {os.cpu_count()}), {cpu}, Python {platform.python_version()}"


def write_docs(section: list[str]) -> None:
    """Replace the "## Relay" section of docs/PERFORMANCE.md, leaving every other section as it is."""
    DOCS.parent.mkdir(exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    body = "## Relay\n\n" + "\n".join(section).rstrip() + "\n"
    match = re.search(r"^## Relay\n.*?(?=^## |\Z)", text, re.M | re.S)
    if match:
        text = text[:match.start()] + body + ("\n" if match.end() < len(text) else "") + text[match.end():]
    else:
        text = text.rstrip() + "\n\n" + body
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured run before each measured one")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measure; the best is kept")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    parser.add_argument("--profile", choices=("nonstream", "stream", "codex"),
                        help="instead of the table: py-spy one worker under this load (needs py-spy in .venv)")
    parser.add_argument("--profile-out", help="path prefix for the profile (default: the temp dir)")
    parser.add_argument("--summarize", metavar="FILE", nargs="+", help="only summarise saved profiles, side by side")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.summarize:
        print("\n".join(summarize(*map(Path, args.summarize))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="proxyhub-bench-"))
    if args.profile:
        profile(args, tmp)
        return
    results = run(args, tmp)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(server_command("proxyhub.asgi:application", 8317, args.workers[-1])[2:])
    section = [
        f"Measured {now} on {machine()}; the load generator (wrk, 1 thread) and the canned upstream",
        "(nginx, 1 worker) share those cores with the server. Each number is the best of "
        f"{args.repeat} run(s) of {args.seconds:g} s after a {args.warmup:g} s warm-up.",
        f"Server: `{command}` (deploy/serve, the README's production command; the pass-through on the same),",
        "ProxyHub with a real key, the credential pool, journaled usage rows on SQLite. `bench/run` reproduces it.",
        "",
        *table(results, args.workers),
    ]
    print("\n".join(section))
    if not args.no_docs:
        write_docs(section)
        print(f"\nwritten to {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
