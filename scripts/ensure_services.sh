#!/usr/bin/env bash
# Makes sure what the test suite talks to is up: PostgreSQL and Redis on 127.0.0.1,
# and Debian's chromium for the browser tests. Starts local servers that are installed
# but down; fails with a clear message where something is missing.
set -u
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

fail() { echo "ensure_services: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "Starting PostgreSQL…"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || fail "PostgreSQL is not reachable on $PGHOST:$PGPORT. Install it (apt-get install postgresql) or set DATABASE_URL to a reachable server."
fi

redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "Starting Redis…"
    mkdir -p /tmp/emhub-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /tmp/emhub-redis --logfile /tmp/emhub-redis/redis.log || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
  redis_up || fail "Redis is not reachable on 127.0.0.1:$REDIS_PORT. Install it (apt-get install redis-server)."
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests…"
  if command -v apt-get >/dev/null; then
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
  [ -x /usr/bin/chromium ] || fail "Debian's chromium is missing (apt-get install chromium); the browser tests need it."
fi
echo "PostgreSQL, Redis and chromium are ready."
