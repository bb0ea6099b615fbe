#!/usr/bin/env bash
# Make sure the services the integration tests use answer:
#   PostgreSQL at 127.0.0.1:5432 (database "test") and Redis at 127.0.0.1:6379.
# A service that does not answer but is installed on this machine is started with
# the machine's own commands; then we wait (at most ENSURE_SERVICES_TIMEOUT seconds,
# default 30) until it answers. Exits non-zero, saying which one and why, otherwise.
# ENSURE_SERVICES_PG_PORT and ENSURE_SERVICES_REDIS_PORT move the ports, to try this
# script without touching the real services.
set -euo pipefail

HOST=127.0.0.1
PG_PORT=${ENSURE_SERVICES_PG_PORT:-5432}
PG_DB="test"
REDIS_PORT=${ENSURE_SERVICES_REDIS_PORT:-6379}
TIMEOUT=${ENSURE_SERVICES_TIMEOUT:-30}

say() { printf 'ensure_services: %s\n' "$*"; }
warn() { printf 'ensure_services: %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo when it works
# without a password.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        warn "need root to run: $*"
        return 1
    fi
}

# True when something accepts TCP connections on host $1, port $2.
tcp_open() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
PY
    else
        # shellcheck disable=SC2016  # $1 and $2 are expanded by the inner bash, on purpose
        timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
    fi
}

postgres_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$HOST" -p "$PG_PORT" -d "$PG_DB" -t 2
    else
        tcp_open "$HOST" "$PG_PORT"
    fi
}

redis_answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        tcp_open "$HOST" "$REDIS_PORT"
    fi
}

postgres_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls -A /etc/postgresql 2>/dev/null)" ]
}

redis_installed() {
    command -v redis-server >/dev/null 2>&1
}

start_postgres() {
    local version
    # The newest installed cluster version, e.g. 15.
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
    say "starting PostgreSQL $version (cluster main)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
    say "starting redis-server on $HOST:$REDIS_PORT"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# ensure NAME ADDRESS: make service NAME answer, starting it when it is installed here.
# Returns non-zero, after saying why, when it still does not answer.
ensure() {
    local name=$1 address=$2 deadline
    if "${name}_answers"; then
        say "$name answers at $address"
        return 0
    fi
    if ! "${name}_installed"; then
        warn "$name does not answer at $address and is not installed on this machine;" \
            "install it or start it there yourself"
        return 1
    fi
    say "$name does not answer at $address; it is installed, starting it"
    if ! "start_${name}"; then
        warn "starting $name failed (see the messages above); waiting in case it comes up anyway"
    fi
    deadline=$((SECONDS + TIMEOUT))
    until "${name}_answers"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "$name still does not answer at $address after ${TIMEOUT}s"
            return 1
        fi
        sleep 1
    done
    say "$name answers at $address"
}

failed=()
ensure postgres "$HOST:$PG_PORT (database $PG_DB)" || failed+=(PostgreSQL)
ensure redis "$HOST:$REDIS_PORT" || failed+=(Redis)

if [ "${#failed[@]}" -gt 0 ]; then
    warn "not available: ${failed[*]}. The integration tests that need them will fail."
    exit 1
fi
say "all services answer"
