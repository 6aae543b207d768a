#!/bin/sh
# Container entry point: the first argument is the role this container plays.
#   web             the ASGI server on $PORT (pages, APIs, websockets)
#   worker          a Celery worker (Apply, checks, reset); CELERY_CONCURRENCY processes
#   beat            the Celery beat scheduler (run exactly one)
#   traffic-worker  the background traffic generator
#   migrate         apply database migrations, then exit
# Anything else is run as a command, e.g. `python manage.py createclass ...`.
set -eu

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
  web)
    exec python -m uvicorn meshconsole.asgi:application --lifespan off --host 0.0.0.0 --port "${PORT:-8000}" \
      --proxy-headers --timeout-graceful-shutdown 10 "$@" ;;
  worker)
    exec python -m celery -A meshconsole worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-4}" --without-gossip --without-mingle "$@" ;;
  beat)
    exec python -m celery -A meshconsole beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${TMPDIR:-/tmp}/celerybeat-schedule" "$@" ;;
  traffic-worker)
    exec python -m traffic.worker "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
