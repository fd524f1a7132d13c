#!/bin/sh
# What routing costs the request path, in instructions (callgrind, so the
# figure does not depend on the machine's load): a release levee with one
# worker serves 2000 keep-alive GETs from one client, once with a file
# without routes and once with N routes (10 hosts x prefixes, the request's
# route last), and callgrind counts the instructions inside
# lv_exchange_on_head (checks, routing, rate limits, the start of the
# attempt: everything per request up to the backend write). A report, not
# a test. Usage: bench/route_callgrind.sh [N...]   (default: 1 50)
# Needs: make build/levee build/levee-demo-backend, valgrind.
set -eu
cd "$(dirname "$0")/.."
LEVEE=${LEVEE:-build/levee}
DEMO=${DEMO:-build/levee-demo-backend}
REQUESTS=${REQUESTS:-2000}
tmp=$(mktemp -d)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port)
"$DEMO" --port "$bport" --host 127.0.0.1 --id b1 >/dev/null 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; rm -rf "$tmp"' EXIT
run() { # $1: number of routes (0: none) -> instructions per request
    port=$(free_port)
    /usr/bin/python3 - "$1" "$port" "$bport" > "$tmp/c.yaml" <<'PY'
import sys
n, port, bport = int(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"listen: 127.0.0.1:{port}\nworkers: 1\nadmin: {{ listen: 'off' }}")
if n == 0:
    print(f"backends:\n  - {{ id: b1, url: 'http://127.0.0.1:{bport}' }}")
else:
    print(f"pools:\n  p:\n    backends: [{{ id: b1, url: 'http://127.0.0.1:{bport}' }}]\nroutes:")
    for i in range(n - 1):
        print(f"  - {{ match: {{ host: h{i % 10}.example.com, path_prefix: /svc{i}/ }}, pool: p }}")
    print("  - { match: { host: bench.example.com, path_prefix: /api/ }, pool: p }")
PY
    valgrind --tool=callgrind --toggle-collect=lv_exchange_on_head \
        --callgrind-out-file="$tmp/cg.out" "$LEVEE" -c "$tmp/c.yaml" > "$tmp/lv.log" 2>&1 &
    lv=$!
    /usr/bin/python3 - "$port" "$REQUESTS" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
req = b"GET /api/v1/items/42?x=1 HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: b\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        k = buf.find(b"\r\n\r\n")
        if k >= 0:
            head = buf[:k].decode().lower()
            cl = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(buf) >= k + 4 + cl:
                buf = buf[k + 4 + cl:]
                break
        chunk = s.recv(65536)
        if not chunk: raise SystemExit("levee closed the connection")
        buf += chunk
s.close()
PY
    kill -TERM $lv; wait $lv || true
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/lv.log")
    echo $((total / REQUESTS))
}
base=$(run 0)
echo "no routes:   $base instructions/request (lv_exchange_on_head, inclusive)"
for n in ${@:-1 50}; do
    x=$(run "$n")
    echo "$n routes: $x instructions/request (+$((x - base)))"
done
