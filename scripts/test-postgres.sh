#!/usr/bin/env bash
# Starts (idempotently) the PostgreSQL server the tests run the collector against: Debian's
# postgresql package (installed if missing), a throwaway cluster under $PGTEST_DIR, listening on
# 127.0.0.1:$PGTEST_PORT with trust authentication for local connections only.
#
#   scripts/test-postgres.sh          # ensure it runs; prints host, port and user
#   scripts/test-postgres.sh stop
set -euo pipefail

PORT="${PGTEST_PORT:-55432}"
DIR="${PGTEST_DIR:-/tmp/chaperone-test-postgres}"
RUN_AS=postgres

find_bin() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    [[ -n "$found" && -x "$found/pg_ctl" ]] && echo "$found"
}

if [[ "${1:-}" == "stop" ]]; then
    BIN="$(find_bin)" || exit 0
    [[ -d "$DIR/data" ]] && runuser -u "$RUN_AS" -- "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    exit 0
fi

BIN="$(find_bin || true)"
if [[ -z "$BIN" ]]; then
    echo "test-postgres: installing PostgreSQL from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
fi
id "$RUN_AS" >/dev/null 2>&1 || useradd --system --home-dir "$DIR" "$RUN_AS"

mkdir -p "$DIR"
chown "$RUN_AS" "$DIR"
if [[ ! -f "$DIR/data/PG_VERSION" ]]; then
    runuser -u "$RUN_AS" -- "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-sync >/dev/null
    cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
fi
if ! runuser -u "$RUN_AS" -- "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    runuser -u "$RUN_AS" -- "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
fi
for _ in $(seq 1 60); do
    if "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q; then
        echo "host=127.0.0.1 port=$PORT user=postgres"
        exit 0
    fi
    sleep 0.5
done
echo "test-postgres: the server did not come up; see $DIR/server.log" >&2
exit 1
