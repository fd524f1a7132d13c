"""87 — reloading the configuration (SIGHUP and POST /reload) and reopening the
access log (SIGUSR1).

A good file: new requests use it, backends that left get nothing, backends whose
id stays keep their state (counters, an open breaker), the generation goes up,
listeners that appeared open and those that went close, and nothing in flight
or connected is dropped. A bad file: levee keeps its configuration, logs
FILE:LINE:COL of every error, counts the failure, and POST /reload answers 400
with the errors.

Configs are rewritten with adminutil.write_config, which keeps the listen,
workers, access_log and admin lines the harness filled in at start."""

import os
import signal
import threading
import time
from collections import Counter

from adminutil import (
    Background,
    backend_of,
    backends_health,
    generation,
    listening_ports,
    metric,
    reload_post,
    reload_via_post,
    reload_via_sighup,
    scrape,
    send,
    wait_metric,
    wait_served_by,
    write_config,
)
from harness import (
    DEADLINE,
    PORTS,
    RawClient,
    connect_refused,
    http_get,
    port_accepts,
    serve,
    wait_for,
)


def backends_yaml(*entries, extra=""):
    """backends: for (demo_or_id, url, {extra keys}) entries."""
    out = "backends:\n"
    for e in entries:
        bid, url, more = (e.id, e.url, {}) if hasattr(e, "url") else e
        out += f"  - id: {bid}\n    url: {url}\n"
        out += "".join(f"    {k}: {v}\n" for k, v in more.items())
    return out + extra


def test_sighup_switches_backends_and_kept_ids_keep_their_state(h):
    a, b, c = h.demo("a"), h.demo("b"), h.demo("c")
    dead = ("dead", f"http://127.0.0.1:{h.closed_port()}", {})
    # Round robin: the test counts which backends answer (peak_ewma, the
    # default, would prefer the new backend with no latency estimate yet).
    breaker = "load_balancing: round_robin\ncircuit_breaker:\n  failure_threshold: 1\n  timeout: 1m\n"
    lv = h.levee(backends_yaml(a, b, dead, extra=breaker))
    first = send(lv, 12)                       # dead refuses once (retried), its breaker opens
    doc = backends_health(lv)
    assert set(first) == {"a", "b"} and doc["dead"]["breaker"]["state"] == "open", (first, doc)
    assert doc["a"]["requests"] == first["a"]

    gen = reload_via_sighup(lv, backends_yaml(a, dead, c, extra=breaker))

    assert gen == 2
    switch = wait_served_by(lv, "c")
    b_before = b.stats()["requests"]
    after = send(lv, 12)
    assert set(after) == {"a", "c"}, f"answers after the reload: {after}"
    assert b.stats()["requests"] == b_before, "a backend that left the configuration got traffic"
    doc = backends_health(lv)
    assert doc[None]["generation"] == 2
    assert [e["id"] for e in doc[None]["backends"]] == ["a", "dead", "c"]
    assert doc["a"]["requests"] == first["a"] + switch["a"] + after["a"], (
        f"a kept its id: its request counter must carry on: {doc['a']}, "
        f"sent {first['a']} + {switch['a']} + {after['a']}")
    assert doc["c"]["requests"] == switch["c"] + after["c"]
    assert doc["dead"]["breaker"]["state"] == "open", (
        f"dead kept its id: its open breaker must stay open: {doc['dead']}")
    assert doc["dead"]["requests"] == 1
    m = scrape(lv)
    assert m.get("levee_config_reloads_total", result="success") == 1
    assert m.get("levee_config_reloads_total", result="failure") == 0
    assert m.get("circuit_breaker_state", backend="dead") == 1
    assert m.value("backend_health", backend="b") is None, "a removed backend is still exposed"


def error_position(text, needle):
    """(line, column), 1-based, of `needle` in `text`."""
    for i, line in enumerate(text.split("\n"), 1):
        at = line.find(needle)
        if at >= 0:
            return i, at + 1
    raise AssertionError(f"{needle!r} not in the config")


def test_sighup_with_a_bad_file_keeps_the_running_configuration(h):
    a, b = h.demo("a"), h.demo("b")
    lv = h.levee(backends_yaml(a))
    send(lv, 2)

    written = write_config(lv, backends_yaml(b) + "timeouts:\n  connect: 5x\n")
    line, col = error_position(written, "5x")
    lv.signal(signal.SIGHUP)

    wait_metric(lv, "levee_config_reloads_total", 1, result="failure")
    where = f"{lv.config_path}:{line}:{col}:"
    wait_for(lambda: where in lv.stderr(), 10, 0.05, f"{where} in the error log")
    assert lv.alive()
    assert generation(lv) == 1
    assert metric(lv, "levee_config_reloads_total", result="success") == 0
    assert send(lv, 6) == Counter({"a": 6}), "levee must keep serving on the old configuration"
    assert b.stats()["requests"] == 0


def test_post_reload_answers_errors_then_the_new_generation(h):
    a, b = h.demo("a"), h.demo("b")
    lv = h.levee(backends_yaml(a))

    written = write_config(lv, backends_yaml(b) + "timeouts:\n  connect: 5x\nworkerz: 2\n")
    status, body = reload_post(lv)

    assert status == 400 and body.get("ok") is False, (status, body)
    errors = body.get("errors")
    assert isinstance(errors, list) and len(errors) == 2, body
    for needle in ("5x", "workerz"):
        line, col = error_position(written, needle)
        where = f"{lv.config_path}:{line}:{col}:"
        assert any(e.startswith(where) for e in errors), f"no error at {where}: {errors}"
    assert metric(lv, "levee_config_reloads_total", result="failure") == 1
    assert send(lv, 4) == Counter({"a": 4})

    write_config(lv, backends_yaml(b))
    status, body = reload_post(lv)

    assert (status, body) == (200, {"ok": True, "generation": 2}), (status, body)
    m = scrape(lv)
    assert m.get("levee_config_generation") == 2
    assert m.get("levee_config_reloads_total", result="success") == 1
    assert m.get("levee_config_reloads_total", result="failure") == 1
    wait_served_by(lv, "b")
    assert send(lv, 4) == Counter({"b": 4})


class Load:
    """Requests without pause on two threads: one keep-alive connection, and a
    new connection per request. Every answer must be a complete 200."""

    def __init__(self, lv):
        self.lv = lv
        self.stop = threading.Event()
        self.failures = []
        self.counts = {"keepalive": 0, "fresh": 0}
        self.backends = Counter()
        self.lock = threading.Lock()
        self.ka = RawClient(lv.port)  # opened before any reload
        lv.harness._clients.append(self.ka)
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in self.counts]
        for t in self.threads:
            t.start()

    def _one(self, kind, i):
        if kind == "keepalive":
            resp = self.ka.get(f"/ka/{i}", timeout=30)
            if "close" in resp.headers.tokens("connection"):
                raise AssertionError(f"levee closed the keep-alive connection: {resp!r}")
        else:
            resp = http_get(self.lv.port, f"/fresh/{i}", timeout=30)
        if resp.status != 200 or not resp.complete:
            raise AssertionError(f"{kind} request {i}: {resp!r}")
        return backend_of(resp)

    def _run(self, kind):
        i = 0
        while not self.stop.is_set():
            try:
                who = self._one(kind, i)
            except Exception as e:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.failures.append(f"{kind} request {i}: {e!r}")
                return
            with self.lock:
                self.counts[kind] += 1
                self.backends[who] += 1
            i += 1

    def progress(self, n=3, timeout=30):
        """Wait until both threads answered n more requests (or one failed)."""
        with self.lock:
            start = dict(self.counts)
        wait_for(lambda: self.failures or all(self.counts[k] >= start[k] + n for k in start),
                 timeout, 0.01, f"{n} more answers on each load thread")

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"


def test_reloads_under_load_fail_no_request_and_drop_no_connection(h):
    a, b, c = h.demo("a"), h.demo("b"), h.demo("c")
    w = lambda d, n: (d.id, d.url, {"weight": n})  # noqa: E731
    lv = h.levee(backends_yaml(a, b, c))
    idle = lv.client()  # keep-alive, used before the reloads and after them only
    assert idle.get("/idle/0").status == 200
    configs = [
        backends_yaml(a, b),
        backends_yaml(w(b, 1), w(c, 5), extra="load_balancing: weighted\n"),
        backends_yaml(a, c, extra="load_balancing: least_connections\n"),
        backends_yaml(w(a, 3), w(b, 1), w(c, 2), extra="load_balancing: weighted\n"),
        backends_yaml(c),
    ]
    load = Load(lv)
    try:
        load.progress()
        for i, cfg in enumerate(configs):
            if i % 2:
                reload_via_post(lv, cfg)
            else:
                reload_via_sighup(lv, cfg)
            load.progress()
    finally:
        load.finish()

    assert not load.failures, f"requests failed during reloads: {load.failures}"
    assert generation(lv) == 6
    assert min(load.counts.values()) >= 3 * (len(configs) + 1), load.counts
    wait_served_by(lv, "c")
    assert send(lv, 4) == Counter({"c": 4})
    for conn in (load.ka, idle):
        resp = conn.get("/after")
        assert (resp.status, backend_of(resp)) == (200, "c"), (
            f"a keep-alive connection opened before the reloads: {resp!r}")
    assert metric(lv, "levee_config_reloads_total", result="success") == 5


def test_request_in_flight_finishes_when_its_backend_is_removed(h):
    slow, fast = h.demo("slow"), h.demo("fast")
    lv = h.levee(backends_yaml(slow))
    conn = lv.client()
    pending = Background(conn.get, "/delay/1500ms")
    wait_for(lambda: backends_health(lv)["slow"]["active_requests"] == 1, 15, 0.02,
             "the slow request in flight")

    reload_via_post(lv, backends_yaml(fast))
    resp = pending.result()

    assert resp.status == 200 and resp.complete, resp
    assert backend_of(resp) == "slow"
    assert pending.elapsed >= 1.4, f"answered after {pending.elapsed:.2f}s: not really in flight"
    assert [e["id"] for e in backends_health(lv)[None]["backends"]] == ["fast"]
    nxt = conn.get("/next")  # the same client connection goes on, on the new configuration
    assert (nxt.status, backend_of(nxt)) == (200, "fast"), nxt


def test_reload_opens_new_listeners_and_closes_removed_ones(h):
    a = h.demo("a")
    p1, p2 = PORTS.get(), PORTS.get()
    lv = h.levee(f"listen: 127.0.0.1:{p1}\n" + backends_yaml(a))
    on_p1 = RawClient(p1)
    h._clients.append(on_p1)
    assert on_p1.get("/before").status == 200
    assert p2 not in listening_ports(lv.pid)

    reload_via_post(lv, f"listen:\n  - 127.0.0.1:{p1}\n  - 127.0.0.1:{p2}\n" + backends_yaml(a))

    wait_for(lambda: port_accepts("127.0.0.1", p2), 10, 0.05, f"levee to listen on {p2}")
    assert http_get(p2, "/p2").status == 200
    assert {p1, p2} <= listening_ports(lv.pid)

    reload_via_sighup(lv, f"listen:\n  - address: 127.0.0.1:{p2}\n" + backends_yaml(a))

    wait_for(lambda: connect_refused("127.0.0.1", p1), 10, 0.05, f"{p1} to be closed")
    assert p1 not in listening_ports(lv.pid)
    assert http_get(p2, "/p2-again").status == 200
    resp = on_p1.get("/after")
    assert resp.status == 200, (
        f"a connection accepted on a listener that went must not be dropped: {resp!r}")


def test_sigusr1_reopens_the_access_log(h):
    a = h.demo("a")
    lv = h.levee(backends_yaml(a))
    assert lv.get("/before-rotation").status == 200
    assert len(lv.access_log_lines(1)) == 1
    rotated = lv.access_log_path.with_name(lv.access_log_path.name + ".1")
    os.rename(lv.access_log_path, rotated)

    lv.signal(signal.SIGUSR1)
    wait_for(lv.access_log_path.exists, 10, 0.02, "the access log to be created again")
    assert lv.get("/after-rotation").status == 200

    new = lv.access_log_lines(1)
    assert len(new) == 1 and '"GET /after-rotation ' in new[0], new
    time.sleep(0.3)  # lines are flushed every 100 ms: nothing else may arrive in the old file
    old = [ln for ln in rotated.read_text().split("\n") if ln]
    assert len(old) == 1 and '"GET /before-rotation ' in old[0], old


class Gathering:
    """A keep-alive scripted backend that holds each request until `n` are in
    at once, then answers them all: a round of n concurrent requests needs n
    connections to it, taken from levee's pool when it kept them, opened
    otherwise (`connections` counts those it accepted)."""

    def __init__(self, h, id, n):
        self.n = n
        self.barrier = threading.Barrier(n, timeout=DEADLINE)
        self.backend = h.scripted(serve(self._respond), id=id)

    def _respond(self, conn, req):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            conn.respond(500, b"the round never gathered\n")
            return
        conn.respond(200, b"ok\n", [("X-Backend-Id", self.backend.id)])

    @property
    def connections(self):
        return self.backend.connections

    def round(self, lv):
        """n concurrent GETs; returns the connections it accepted meanwhile,
        once levee has put every connection of the round back in its pool."""
        before = self.connections
        calls = [Background(lv.get, f"/round/{i}") for i in range(self.n)]
        for c in calls:
            resp = c.result()
            assert resp.status == 200, resp
        wait_for(lambda: backends_health(lv)[self.backend.id]["active_requests"] == 0,
                 DEADLINE, 0.02, "every connection of the round back in levee's pool")
        return self.connections - before


def test_reload_applies_the_new_pool_max_idle_to_kept_backends(h):
    """README: backends whose id stays keep their state (pools) and new
    requests use the new configuration — pool.max_idle included. With
    max_idle 1, each round of n concurrent requests finds 1 idle connection
    and opens n-1; after a reload to max_idle n, the connections of a round
    all stay, and the next round opens none."""
    n = 8
    b = Gathering(h, "b", n)
    pool = lambda k: f"pool:\n  max_idle: {k}\n  idle_timeout: 5m\n"  # noqa: E731
    lv = h.levee(backends_yaml(("b", b.backend.url, {}), extra=pool(1)))

    assert b.round(lv) == n                 # an empty pool: n new connections, 1 kept
    assert b.round(lv) == n - 1, "max_idle 1: one connection kept between rounds"

    reload_via_sighup(lv, backends_yaml(("b", b.backend.url, {}), extra=pool(n)))
    assert b.round(lv) == n - 1             # still the one kept before the reload; now n kept

    opened_before = metric(lv, "levee_backend_connections_opened_total", backend="b")
    opened = b.round(lv)
    assert opened == 0, (
        f"after the reload to max_idle {n} a round of {n} requests opened {opened} new "
        f"connections: the kept backend's pool still holds only "
        f"{n - opened} (the old max_idle)")
    assert metric(lv, "levee_backend_connections_opened_total", backend="b") == opened_before
    assert not b.backend.errors, b.backend.errors
