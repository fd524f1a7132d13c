#!/bin/sh
# `make run`: three demo backends on 8001-8003 and levee on 8080 in front of
# them (config/levee.yaml). Ctrl-C stops everything this script started.
set -eu
cd "$(dirname "$0")/.."

LEVEE=build/levee
DEMO=build/levee-demo-backend
CONFIG=${LEVEE_CONFIG:-config/levee.yaml}
pids=""

cleanup() {
    trap - EXIT INT TERM
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

port_busy() {
    /usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

for port in 8001 8002 8003 8080; do
    if port_busy "$port"; then
        echo "run: port $port is in use; stop what uses it (or edit $CONFIG)" >&2
        exit 1
    fi
done

"$LEVEE" -t -c "$CONFIG"

# A little realism: backend3 is slower and fails now and then.
"$DEMO" --port 8001 --id backend1 & pids="$pids $!"
"$DEMO" --port 8002 --id backend2 --latency 5ms & pids="$pids $!"
"$DEMO" --port 8003 --id backend3 --latency 20ms --jitter 30ms --error-rate 0.02 & pids="$pids $!"

"$LEVEE" -c "$CONFIG" & levee=$!
pids="$pids $levee"

cat <<MSG

  levee is running on http://localhost:8080 in front of three demo backends.

    curl -i http://localhost:8080/            # balanced over backend1..3 (see X-Backend-Id)
    curl -s http://localhost:8080/echo        # what the backend received (X-Forwarded-*)
    curl -s http://localhost:8080/bytes/1MiB -o /dev/null -w '%{size_download}\n'

  Access log below. Ctrl-C stops levee and the backends.

MSG
wait "$levee"
