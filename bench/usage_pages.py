"""Time every usage page at a million usage rows, and check each total against a raw SQL sum.

    .venv/bin/python bench/usage_pages.py                      # SQLite file /tmp/proxyhub-usage-bench.sqlite3
    .venv/bin/python bench/usage_pages.py --postgres ph_r      # a scratch Postgres database (emptied first!)
    .venv/bin/python bench/usage_pages.py --reuse              # keep the rows of the previous run

Builds the rows with ``manage.py usage_fixture`` (the gateway's own write path,
so rollups are maintained as in production) into a scratch database, then
requests every page through Django's test Client logged in as staff (and as
one fixture teammate): the admin report for each grouping over 24 h, 7, 30
and 90 days and a custom range, the teammate's page, the usage record list
(first page, a deep page, filters, search) and the CSV exports. Each time is
the median of three requests after one warm-up; "Client CPU" is this process's
CPU time for the request (on SQLite that includes the queries), a measure that
does not grow when other processes load the machine. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5  # seconds, issue 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--sqlite", default="/tmp/proxyhub-usage-bench.sqlite3", help="scratch SQLite file")
    parser.add_argument("--postgres", metavar="DB", help="scratch Postgres database on 127.0.0.1 (emptied first)")
    parser.add_argument("--reuse", action="store_true", help="keep the database of the previous run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = (f"postgres://postgres@127.0.0.1:5432/{args.postgres}" if args.postgres
           else f"sqlite:///{args.sqlite}")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxyhub.settings")
    os.environ.setdefault("PROXYHUB_BACKGROUND_REFRESH", "false")
    if not args.reuse:
        build(args, url)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    rows = measure(args.repeat)
    print_table(rows, url)
    if any(not r["ok"] for r in rows):
        sys.exit(1)


def build(args: argparse.Namespace, url: str) -> None:
    """A fresh scratch database holding ``--rows`` fixture rows."""
    if args.postgres:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{args.postgres}", autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(args.sqlite + suffix).unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": url}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    started = time.monotonic()
    subprocess.run([*manage, "usage_fixture", "--rows", str(args.rows), "--days", str(args.days),
                    "--keys", str(args.keys), "--seed", "7"], env=env, check=True, cwd=ROOT)
    print(f"built {args.rows} rows in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.postgres:
        # What autovacuum would do soon after a bulk load: planner statistics and the visibility map.
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{args.postgres}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def measure(repeat: int) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from gateway.usage import reports

    setup_test_environment()  # response.context, and "testserver" in ALLOWED_HOSTS
    staff = get_user_model().objects.filter(username="bench-admin").first() or \
        get_user_model().objects.create_superuser("bench-admin", "", None)
    admin = Client()
    admin.force_login(staff)
    teammate = _busiest_teammate()
    mine = Client()
    mine.force_login(teammate)
    results: list[dict[str, Any]] = []

    def page(name: str, client: Client, url: str, check: Callable[[Any], str | None] | None = None) -> None:
        times, cpu, response = _timed(client, url, repeat)
        problem = check(response) if check else None
        if response.status_code != 200:
            problem = f"status {response.status_code}"
        results.append({"page": name, "url": url, "seconds": statistics.median(times), "cpu": statistics.median(cpu),
                        "ok": problem is None and statistics.median(times) < TARGET, "check": problem or "ok"})
        print(f"{name:50s} {statistics.median(times) * 1000:7.0f} ms  {problem or 'ok'}", file=sys.stderr)

    for period in reports.PERIODS:
        span = reports.period_range(period)
        for by in reports.GROUPS:
            page(f"admin report {period} by {by}", admin, f"/admin/usage/?by={by}&period={period}",
                 _report_check(span))
    today = reports.period_start("24h").date()
    custom = reports.Range.of_dates(today - timedelta(days=44), today - timedelta(days=15))
    page("admin report custom 30 days by model", admin,
         f"/admin/usage/?by=model&from={today - timedelta(days=44)}&to={today - timedelta(days=15)}",
         _report_check(custom))
    page("admin report CSV 90d by key (whole body)", admin, "/admin/usage/csv/?by=key&period=90d")
    page("teammate page (30 days)", mine, "/me/usage/", _report_check(reports.period_range("30d"), teammate.pk))
    page("teammate CSV", mine, "/me/usage/csv/")
    records = "/admin/gateway/usagerecord/"
    page("record list, page 1", admin, records, _list_check)
    page("record list, page 5000 (offset 500,000)", admin, f"{records}?p=5000", _list_check)
    page("record list, outcome=upstream_error", admin, f"{records}?outcome__exact=upstream_error", _list_check)
    page("record list, provider=codex, last 24 h", admin, f"{records}?provider=codex&within=24h", _list_check)
    page("record list, search by key prefix", admin, f"{records}?q={_a_prefix()}", _list_check)
    page("credentials page (24 h usage from rollups)", admin, "/admin/credentials/credential/")
    for period in ("24h", "7d", "90d"):
        page(f"overview {period}", admin, f"/admin/overview/?period={period}", _overview_check(period))
    page("overview 90d, one teammate", admin, f"/admin/overview/?period=90d&user={teammate.pk}",
         _overview_check("90d", teammate.pk))
    first_byte, whole, lines = _export_timing(admin, "/admin/gateway/usagerecord/export/?period=90d")
    results.append({"page": "raw records CSV, 90 d: first chunk", "url": "", "seconds": first_byte, "cpu": None,
                    "ok": first_byte < TARGET, "check": f"{lines} lines in {whole:.1f} s, streamed"})
    connection.close()
    return results


def _timed(client: Any, url: str, repeat: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds of ``repeat`` requests after a warm-up (templates, catalog, page cache)."""
    response = _get(client, url)
    times, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        response = _get(client, url)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return times, cpu, response


def _get(client: Any, url: str) -> Any:
    response = client.get(url)
    if getattr(response, "streaming", False):
        response.body = b"".join(response.streaming_content)
    return response


def _export_timing(client: Any, url: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    response = client.get(url)
    chunks = iter(response.streaming_content)
    first = next(chunks)
    first_byte = time.perf_counter() - started
    lines = first.count(b"\n") + sum(chunk.count(b"\n") for chunk in chunks)
    return first_byte, time.perf_counter() - started, lines


def _report_check(span: Any, user_id: int | None = None) -> Callable[[Any], str | None]:
    def check(response: Any) -> str | None:
        total = response.context["total"]
        raw = raw_sums(span, user_id)
        shown = (total["requests"], total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
                 total["cache_write_tokens"])
        return None if shown == raw else f"total {shown} != raw SQL {raw}"
    return check


def _overview_check(period: str, user_id: int | None = None) -> Callable[[Any], str | None]:
    def check(response: Any) -> str | None:
        total = response.context["total"].sums
        raw = raw_sums(response.context["f"].span, user_id)
        shown = (total["requests"], total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
                 total["cache_write_tokens"])
        return None if shown == raw else f"total {shown} != raw SQL {raw}"
    return check


def raw_sums(span: Any, user_id: int | None = None) -> tuple[int, ...]:
    """COUNT(*) and token sums over the raw records of ``span``: what every report total must equal."""
    from django.db import connection

    where, params = ["1=1"], []
    if span.since:
        where.append("created_at >= %s")
        params.append(connection.ops.adapt_datetimefield_value(span.since))
    if span.until:
        where.append("created_at < %s")
        params.append(connection.ops.adapt_datetimefield_value(span.until))
    if user_id is not None:
        where.append("user_id = %s")
        params.append(user_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                       "COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0) "
                       f"FROM gateway_usagerecord WHERE {' AND '.join(where)}", params)
        return tuple(int(v) for v in cursor.fetchone())


def _list_check(response: Any) -> str | None:
    shown = len(response.context["cl"].result_list)
    return None if shown else "empty page"


def _busiest_teammate() -> Any:
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from gateway.models import UsageRecord

    top = (UsageRecord.objects.filter(created_at__gte=_days_ago(30)).values("user_id")
           .annotate(n=Count("id")).order_by("-n").first())
    return get_user_model().objects.get(pk=top["user_id"])


def _a_prefix() -> str:
    from accounts.models import ApiKey

    return ApiKey.objects.filter(name="fixture-03").values_list("prefix", flat=True).get()


def _days_ago(days: int) -> Any:
    from django.utils import timezone

    return timezone.now() - timedelta(days=days)


def print_table(rows: list[dict[str, Any]], url: str) -> None:
    from django.db import connection

    from gateway.models import UsageRecord

    count = UsageRecord.objects.count()
    load = os.getloadavg()[0]
    print(f"\n{connection.vendor}, {count:,} usage records ({url.split('@')[-1]}), "
          f"{os.cpu_count()} cores, load average {load:.1f} at the end\n")
    print("| Page | Median of 3 | Client CPU | Under 0.5 s | Totals = raw SQL sum |")
    print("|---|---:|---:|:-:|---|")
    for r in rows:
        cpu = "" if r["cpu"] is None else f"{r['cpu'] * 1000:.0f} ms"
        print(f"| {r['page']} | {r['seconds'] * 1000:.0f} ms | {cpu} | {'yes' if r['seconds'] < TARGET else 'NO'} "
              f"| {r['check']} |")


if __name__ == "__main__":
    main()
