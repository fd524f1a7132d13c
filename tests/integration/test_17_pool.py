"""17 — the backend connection pool with its default configuration.

The pool needs no tuning (issue 14): with the default `pool.max_idle`
(unlimited) it keeps as many idle connections as demand needed, so rounds of
many concurrent keep-alive requests open no new connection once the first
round has opened them; LIFO reuse leaves the connections demand no longer
needs cold, and `pool.idle_timeout` closes them. Counted in connections the
backend accepted, never in time."""

import threading

from adminutil import Background, backends_health, metric, wait_metric
from harness import DEADLINE, serve, wait_for


class Gathering:
    """A keep-alive scripted backend that holds each request until `n` are in
    at once, then answers them all: a round of n concurrent requests needs n
    connections to it, taken from levee's pool when it kept them."""

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
        conn.respond(200, b"ok\n")

    def round(self, lv):
        """n concurrent GETs; returns the connections the backend accepted
        meanwhile, once every connection of the round is back in the pool."""
        before = self.backend.connections
        calls = [Background(lv.get, f"/round/{i}") for i in range(self.n)]
        for c in calls:
            resp = c.result()
            assert resp.status == 200, resp
        wait_for(lambda: backends_health(lv)[self.backend.id]["active_requests"] == 0,
                 DEADLINE, 0.02, "every connection of the round back in levee's pool")
        return self.backend.connections - before


def test_default_pool_keeps_what_80_concurrent_requests_needed(h):
    """80 concurrent keep-alive requests (more than the old default cap of 64)
    open 80 connections once; the next rounds reuse them all."""
    n = 80
    b = Gathering(h, "b", n)
    lv = h.levee(f"backends:\n  - id: b\n    url: {b.backend.url}\n")

    assert b.round(lv) == n  # an empty pool: n new connections, all kept
    for i in range(3):
        opened = b.round(lv)
        assert opened == 0, (
            f"round {i + 2} of {n} concurrent requests opened {opened} new backend "
            f"connections: the default pool kept only {n - opened}")
    assert metric(lv, "levee_backend_connections_opened_total", backend="b") == n
    assert not b.backend.errors, b.backend.errors


def test_idle_timeout_shrinks_the_pool_demand_no_longer_needs(h):
    """After a burst of 20 concurrent requests, serial requests reuse the most
    recent connection (LIFO); the others time out: the pool shrinks to what
    the serial load needs, and that load opens no new connection."""
    n = 20
    b = Gathering(h, "b", n)
    lv = h.levee(f"backends:\n  - id: b\n    url: {b.backend.url}\n"
                 "pool:\n  idle_timeout: 1s\n")
    assert b.round(lv) == n
    assert metric(lv, "levee_backend_connections") == n

    b.barrier = threading.Barrier(1)
    c = lv.client()
    before = b.backend.connections

    def shrunk():
        assert c.get("/serial").status == 200
        return metric(lv, "levee_backend_connections") <= 1

    wait_for(shrunk, DEADLINE, 0.1, "the idle connections closed by pool.idle_timeout")
    opened = b.backend.connections - before
    assert opened <= 1, f"serial requests opened {opened} connections"
    wait_metric(lv, "levee_backend_connections", lambda v: v <= 1)
