"""The canned upstream: an nginx config that answers from memory with the bodies in canned.py.

Both upstreams share one server, as ProxyHub's base URLs allow:

    POST /v1/messages   Accept: text/event-stream -> the Anthropic SSE stream, else the JSON answer
    POST /responses     the Codex SSE stream (the Codex backend is stream-only)

The bodies are static files (``return 200 '...'`` is capped at 4 KB of config
text); nginx's static module answers POST with 405, which ``error_page 405 =200
$uri`` turns into the file itself (nginx re-serves it as a GET). open_file_cache
keeps the files open, so a request costs no syscall beyond the send.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from canned import BODIES


def config(prefix: Path, port: int) -> str:
    # Run as root (the bench installs packages with apt-get), workers would drop to nobody and
    # could not read the private temp dir the bodies live in.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
daemon off;
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    root {prefix}/bodies;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /v1/messages {{
            if ($http_accept ~ "event-stream") {{ rewrite ^ /claude.sse last; }}
            rewrite ^ /claude.json last;
        }}
        location = /responses {{ rewrite ^ /codex.sse last; }}
        location = /claude.json {{ internal; default_type application/json; error_page 405 =200 $uri; }}
        location ~ [.]sse$ {{ internal; default_type text/event-stream; error_page 405 =200 $uri; }}
    }}
}}
"""


def start(prefix: Path, port: int) -> subprocess.Popen[bytes]:
    """Write the config under ``prefix`` and start nginx in the foreground (the caller stops it)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "bodies").mkdir(exist_ok=True)
    for name, make in BODIES.items():
        (prefix / "bodies" / name).write_bytes(make())
    conf = prefix / "nginx.conf"
    conf.write_text(config(prefix, port))
    subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf)], check=True)
    return subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)])
