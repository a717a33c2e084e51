#!/usr/bin/env bash
# Entry point of the container image (deploy/Dockerfile) and of deploy/proxyhub.service:
# wait for the database, migrate and create the first admin (one replica at a time: the others wait
# on a lock, then find nothing to do), then replace this shell with the production server,
# PROXYHUB_WORKERS uvicorn workers (default: one per core), so SIGTERM reaches it directly.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHON
"$PYTHON" manage.py prepare_database --wait "${PROXYHUB_DB_WAIT_SECONDS:-60}"
exec deploy/serve
