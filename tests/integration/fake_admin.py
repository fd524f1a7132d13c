"""A stand-in for levee's admin listener (docs/admin-api.md), for developing
src/admin/dashboard.html without levee, and for test_86's check of the page
contract on its own. Plausible, changing data; not a model of levee's logic.

    /usr/bin/python3 tests/integration/fake_admin.py --port 9901
    # then open http://127.0.0.1:9901/

Serves `/` (the dashboard file, read on every request), `/health`,
`/backends/health` and `/api/history` (prefilled with 5 minutes, one point a
second). Like levee, it answers 421 to a Host that is not its own address
(or localhost) with its port, and it counts the API calls that came with
and without `X-Levee-Admin: 1` (`api_calls`), which the dashboard sends on
every call. Control:

    POST /__fake/state?id=b2&state=open     ok | unhealthy | open | half_open | draining | disabled
    POST /__fake/fail?on=1                  the JSON endpoints answer 503 (on=0 to stop)
    POST /__fake/add?id=X&url=U             one more backend

Standard library only.
"""

import argparse
import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DASHBOARD = Path(__file__).resolve().parents[2] / "src" / "admin" / "dashboard.html"
STATES = ("ok", "unhealthy", "open", "half_open", "draining", "disabled")
OPEN_MS = 5000  # how long the fake breaker stays open before a probe


class FakeAdmin:
    def __init__(self, port=0, host="127.0.0.1", ids=("b1", "b2", "b3"), history_s=300, seed=7):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.failing = False
        self.api_calls = {"with_header": 0, "without_header": 0}
        self.started = time.time() - 3 * 3600 - 754
        self.backends = {}
        for i, bid in enumerate(ids):
            self._add(bid, f"http://10.0.0.{11 + i}:8080", weight=1 + (i == 0))
        now = int(time.time()) * 1000
        self.points = []
        self.last_t = now - history_s * 1000
        # a past incident so the charts have something to show: the last backend's
        # breaker opened for 40 s, four minutes ago
        self._advance(now - 240_000)
        self._advance(now - 200_000, incident=ids[-1])
        self._advance(now)
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread = None

    # ---- lifecycle

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # ---- state

    def _add(self, bid, url, weight=1):
        self.backends[bid] = {"url": url, "weight": weight, "state": "ok", "since": 0,
                              "requests": self.rng.randint(50_000, 90_000), "errors": 0,
                              "base": 180 + 60 * len(self.backends), "checks": 40}

    def add(self, bid, url):
        with self.lock:
            self._add(bid, url)

    def set_state(self, bid, state):
        if state not in STATES:
            raise ValueError(state)
        with self.lock:
            b = self.backends[bid]
            b["state"], b["since"], b["checks"] = state, time.time(), 0

    def _advance(self, until_ms, incident=None):
        """Append one point per second up to `until_ms`."""
        while self.last_t + 1000 <= until_ms:
            t = self.last_t = self.last_t + 1000
            wave = 1 + 0.25 * math.sin(t / 90_000) + 0.08 * math.sin(t / 7_000)
            per, total, errs = {}, 0.0, 0.0
            for bid, b in self.backends.items():
                state = "open" if bid == incident else b["state"]
                share = {"ok": 1.0, "draining": 0.15, "half_open": 0.05}.get(state, 0.0)
                rps = round(b["base"] * wave * share * self.rng.uniform(0.9, 1.1), 1)
                err = round(rps * self.rng.uniform(0, 0.004), 1)
                if state == "open":  # the failures that opened it, then nothing
                    err = rps = 0.0
                per[bid] = {"rps": rps, "errors": err, "state": state}
                total += rps
                errs += err
                b["requests"] += int(rps)
                b["errors"] += int(err)
            spike = 1 if incident and self.rng.random() < 0.6 else 0
            if spike:
                errs += total * self.rng.uniform(0.03, 0.09)
            self.points.append({
                "t": t, "rps": round(total, 1),
                "error_rate": round(errs / total, 4) if total else 0.0,
                "p50_ms": round(1.1 * wave * self.rng.uniform(0.9, 1.1), 2),
                "p99_ms": round((8 + 30 * spike) * wave * self.rng.uniform(0.8, 1.3), 2),
                "backends": per})
        del self.points[:-600]

    def history(self):
        with self.lock:
            self._advance(time.time() * 1000)
            return {"interval_ms": 1000, "points": list(self.points)}

    def health_doc(self):
        with self.lock:
            self._advance(time.time() * 1000)
            now = time.time()
            out = []
            for bid, b in self.backends.items():
                st = b["state"]
                last = self.points[-1]["backends"].get(bid, {"rps": 0})
                checks = int(b["checks"] + (now - (b["since"] or now - 60)) * 5)
                down = st == "unhealthy"
                opened = now - (b["since"] or now)
                out.append({
                    "id": bid, "url": b["url"], "weight": b["weight"],
                    "admin_state": st if st in ("draining", "disabled") else "enabled",
                    "usable": st in ("ok", "draining", "half_open"),
                    "health": "unhealthy" if down else "healthy",
                    "breaker": {
                        "state": st if st in ("open", "half_open") else "closed",
                        "next_change_ms": (int(OPEN_MS - (opened * 1000) % OPEN_MS)
                                           if st == "open" else None),
                        "consecutive_failures": 5 if st == "open" else 0,
                        "window": {"ok": int(last["rps"] * 10), "fail": 14 if st == "open" else 0}},
                    "consecutive_check_failures": checks if down else 0,
                    "consecutive_check_successes": 0 if down else checks,
                    "active_requests": int(last["rps"] * 0.01 + self.rng.random() * 2),
                    "requests": b["requests"], "errors": b["errors"],
                    "latency_ms": {"p50": round(self.rng.uniform(0.9, 1.4), 2),
                                   "p99": round(self.rng.uniform(6, 11), 2)},
                    "last_check": None if st == "disabled" else {
                        "result": "connect refused" if down else "ok (200)",
                        "time": int(now * 1000 - self.rng.randint(20, 190))},
                })
            return {"time": int(now * 1000), "backends": out}

    # ---- HTTP

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def host_ok(self):
                host, port = fake.server.server_address[:2]
                return self.headers.get("Host", "").lower() in (f"{host}:{port}",
                                                                 f"localhost:{port}")

            def do_GET(self):
                path = urlsplit(self.path).path
                if not self.host_ok():
                    return self.send(421, {"ok": False, "status": 421,
                                           "error": "Host does not name this admin listener"})
                if path != "/":
                    with fake.lock:
                        sent = self.headers.get("X-Levee-Admin") == "1"
                        fake.api_calls["with_header" if sent else "without_header"] += 1
                if path == "/":
                    return self.send(200, DASHBOARD.read_bytes(), "text/html; charset=utf-8")
                if fake.failing:
                    return self.send(503, {"error": "fake_failure"})
                if path == "/health":
                    return self.send(200, {"status": "healthy",
                                           "uptime_seconds": int(time.time() - fake.started)})
                if path == "/backends/health":
                    return self.send(200, fake.health_doc())
                if path == "/api/history":
                    return self.send(200, fake.history())
                self.send(404, {"error": "not_found"})

            def do_POST(self):
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                try:
                    if url.path == "/__fake/state":
                        fake.set_state(q["id"], q["state"])
                    elif url.path == "/__fake/fail":
                        fake.failing = q.get("on", "1") == "1"
                    elif url.path == "/__fake/add":
                        fake.add(q["id"], q.get("url", "http://127.0.0.1:1"))
                    else:
                        return self.send(404, {"error": "not_found"})
                except (KeyError, ValueError) as e:
                    return self.send(400, {"error": f"bad request: {e}"})
                self.send(200, {"ok": True})

        return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=9901)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    fake = FakeAdmin(args.port, args.host).start()
    print(f"fake admin on {fake.url}", flush=True)
    try:
        fake.thread.join()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
