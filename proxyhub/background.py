"""Process-wide background tasks, started with the first ASGI event (daphne has no lifespan hook)."""
from __future__ import annotations

import asyncio

from django.conf import settings

from proxyhub import drain

_started: set[asyncio.AbstractEventLoop] = set()
_tasks: list[asyncio.Task[None]] = []


async def _publish_metrics() -> None:
    """Write this worker's metrics to its files every second: /metrics reads every worker's from there."""
    from gateway.usage import metrics, writer

    while True:
        metrics.set_usage_backlog(writer.waiting_rows(), writer.dropped_rows())
        metrics.flush()
        await asyncio.sleep(1.0)


def start_once() -> None:
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    _started.add(loop)
    from gateway.shared.generations import watch

    # Clears this process's key, catalog and pool caches when another process changed them.
    _tasks.append(loop.create_task(watch(settings.PROXYHUB_SHARED_POLL_SECONDS)))
    drain.install()  # daphne: SIGTERM drains instead of cancelling every stream
    _tasks.append(loop.create_task(_publish_metrics()))
    from gateway.usage.retention import run_retention
    from gateway.usage.writer import run_replayer

    # Replays the usage journal segments of workers that died (at start, then periodically).
    _tasks.append(loop.create_task(run_replayer()))
    _tasks.append(loop.create_task(run_retention()))
    if settings.PROXYHUB_BACKGROUND_REFRESH:
        from credentials.refresh import run_refresher

        _tasks.append(loop.create_task(run_refresher(settings.PROXYHUB_REFRESH_INTERVAL,
                                                     settings.PROXYHUB_REFRESH_MARGIN)))
    if settings.PROXYHUB_ALERT_CHECK_SECONDS > 0:
        from credentials.alerts import run_checks

        # High windows, re-login states and ended episodes, from the database (credentials/alerts.py).
        _tasks.append(loop.create_task(run_checks(settings.PROXYHUB_ALERT_CHECK_SECONDS)))
    if settings.PROXYHUB_WINDOW_POLL_SECONDS > 0:
        from credentials.windows import run_window_poller

        _tasks.append(loop.create_task(run_window_poller(settings.PROXYHUB_WINDOW_POLL_SECONDS)))
