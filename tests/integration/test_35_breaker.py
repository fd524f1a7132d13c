"""35 — circuit breaker per backend, shared by all workers: consecutive failures
(or a failure rate over a window) open it; an open breaker sends the backend
nothing until its open period ends; then one probe; a failed probe reopens it
for twice as long; success_threshold probe successes close it. With every
breaker open, levee answers 503 no_backend at once, with Retry-After.

Scripted backends record each request with its arrival time; 500 is added to
retry_on so that clients see 200 while a backend fails (the breaker counts
500 as a failure either way).
"""

import json
import threading
import time

from adminutil import Background, admin_get, admin_json, backends_health, scrape
from harness import (
    DEADLINE,
    RawClient,
    echo_handler,
    error_body,
    parse_combined,
    serve,
    wait_for,
)

# The breaker's tests keep round robin: the failing backend must keep being
# chosen for its breaker to count (peak_ewma, the default, avoids it from its
# first failure: tests/integration/test_46_policy.py).
RETRY_500 = """
retry:
  retry_on: [connect_failure, reset, timeout, 500, 502, 503, 504]
"""


class Switchable:
    """A scripted backend answering 500 or 200 as `mode` says, recording the
    arrival time of each request."""

    def __init__(self, h, id, mode="fail"):
        self.mode = mode
        self.answers = []  # (arrival time, status)
        self.lock = threading.Lock()
        self.backend = h.scripted(serve(self._respond), id=id)

    def _respond(self, conn, req):
        status = self.next_status()
        with self.lock:
            self.answers.append((req.received_at, status))
        conn.respond(status, b"from %s\n" % self.backend.id.encode())

    def next_status(self):
        return 500 if self.mode == "fail" else 200

    @property
    def url(self):
        return self.backend.url

    def count(self):
        with self.lock:
            return len(self.answers)

    def times(self):
        with self.lock:
            return [t for t, _s in self.answers]


def three(h, bad):
    g1, g2 = h.scripted(echo_handler(), id="g1"), h.scripted(echo_handler(), id="g2")
    return f"""
backends:
  - id: bad
    url: {bad.url}
  - id: g1
    url: {g1.url}
  - id: g2
    url: {g2.url}
load_balancing: round_robin
"""


class Driver:
    """Sequential GETs on one keep-alive connection; every answer must be 200."""

    def __init__(self, lv):
        self.lv = lv
        self.c = lv.client()
        self.n = 0

    def get(self):
        self.n += 1
        resp = self.c.get(f"/d/{self.n}", timeout=30)
        assert resp.status == 200, resp
        return resp

    def until(self, pred, timeout, pace=0.02, what="condition"):
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
            self.get()
            time.sleep(pace)


def test_breaker_opens_stays_open_reopens_longer_and_closes_after_recovery(h):
    bad = Switchable(h, "bad")
    lv = h.levee(three(h, bad) + RETRY_500 + """
circuit_breaker:
  failure_threshold: 3
  success_threshold: 2
  timeout: 2s
  max_timeout: 1m
""")
    d = Driver(lv)

    # closed -> open after exactly failure_threshold failures (one request at a time)
    d.until(lambda: bad.count() >= 3, 20, pace=0, what="3 requests at the failing backend")
    t3 = bad.times()[2]
    sent = 0
    while sent < 50 and time.monotonic() - t3 < 1.4:  # well inside the open period (>= 1.6 s)
        d.get()
        sent += 1
    assert sent >= 10, f"only {sent} requests in 1.4 s: the machine is too slow for this test"
    assert bad.count() == 3, (
        f"{bad.count() - 3} of {sent} requests reached the backend while its breaker was open")

    # the open period ends: one probe; it fails and the breaker opens again
    d.until(lambda: bad.count() >= 4, 2.4 + 6, what="the first probe")
    t4 = bad.times()[3]
    assert t4 - t3 >= 1.6, f"first probe {t4 - t3:.2f}s after opening; timeout is 2s (-20%)"

    # the second open period is twice as long (4 s +-20%): no probe at 1.2 x timeout
    bad.mode = "ok"
    d.until(lambda: bad.count() >= 5, 4.8 + 6, what="the second probe")
    t5 = bad.times()[4]
    assert t5 - t4 >= 2.9, (
        f"second probe {t5 - t4:.2f}s after the failed first one: the open period did not double")

    # recovered: success_threshold probe successes close the breaker, traffic returns
    before = bad.count()
    for _ in range(45):
        d.get()
    got = bad.count() - before
    assert got >= 10, f"the recovered backend got {got} of 45 requests (a third is 15)"
    wait_for(lambda: "circuit breaker closed" in lv.stderr(), timeout=10,
             what="levee's log line for the closed breaker")
    assert [s for _t, s in bad.answers[:4]] == [500] * 4


def test_open_breaker_is_shared_by_all_workers(h):
    bad = Switchable(h, "bad")
    lv = h.levee(three(h, bad) + RETRY_500 + """
workers: 2
circuit_breaker:
  failure_threshold: 3
  timeout: 1m
""")

    for i in range(40):  # a fresh connection each: the kernel spreads them over both workers
        resp = lv.get(f"/w/{i}")
        assert resp.status == 200, resp

    assert bad.count() == 3, (
        f"the failing backend got {bad.count()} requests; one shared breaker allows 3")


def test_failure_rate_opens_the_breaker_without_consecutive_failures(h):
    state = {"n": 0}
    lock = threading.Lock()

    class Alternating(Switchable):
        def next_status(self):
            with lock:
                state["n"] += 1
                return 500 if state["n"] % 2 else 200

    bad = Alternating(h, "bad")
    g = h.scripted(echo_handler(), id="good")
    lv = h.levee(f"""
        backends:
          - id: bad
            url: {bad.url}
          - id: good
            url: {g.url}
        load_balancing: round_robin
        circuit_breaker:
          failure_threshold: 100
          failure_rate_threshold: 0.4
          minimum_requests: 10
          window: 10s
          timeout: 1m
          failures_in_window: 0   # the rate rule alone (the count would open it first)
        retry:
          retry_on: [connect_failure, reset, timeout, 500, 502, 503, 504]
    """)
    d = Driver(lv)

    for _ in range(40):
        d.get()
    opened_at = bad.count()
    for _ in range(40):
        d.get()

    # 5 failures in 10 (or 6 in 11) reach 0.4: open after 10 or 11 requests
    assert 10 <= opened_at <= 12, f"the alternating backend got {opened_at} of 40 requests"
    assert bad.count() == opened_at, "requests reached the backend after its breaker opened"
    assert "circuit breaker open" in lv.stderr()


def test_failures_in_window_open_it_whatever_the_successes_between(h):
    # One request in three fails: never 2 in a row, a third of the outcomes
    # (under the default 50% rate). nginx's max_fails/fail_timeout: the 4th
    # failure within fail_window opens it, after 10 requests.
    state = {"n": 0}
    lock = threading.Lock()

    class OneInThree(Switchable):
        def next_status(self):
            with lock:
                state["n"] += 1
                return 500 if state["n"] % 3 == 1 else 200

    bad = OneInThree(h, "bad")
    g = h.scripted(echo_handler(), id="good")
    lv = h.levee(f"""
        backends:
          - id: bad
            url: {bad.url}
          - id: good
            url: {g.url}
        load_balancing: round_robin
        circuit_breaker:
          failures_in_window: 4
          fail_window: 1m
          timeout: 1m
        retry:
          retry_on: [connect_failure, reset, timeout, 500, 502, 503, 504]
    """)
    d = Driver(lv)

    for _ in range(60):
        d.get()

    statuses = [st for _t, st in bad.answers]
    assert statuses[:10] == [500, 200, 200] * 3 + [500], statuses
    assert bad.count() == 10, "requests reached the backend after the 4th failure"
    assert "circuit breaker open" in lv.stderr()


def test_the_default_count_takes_a_backend_failing_a_third_of_its_requests_out(h):
    state = {"n": 0}
    lock = threading.Lock()

    class OneInThree(Switchable):
        def next_status(self):
            with lock:
                state["n"] += 1
                return 500 if state["n"] % 3 == 1 else 200

    bad = OneInThree(h, "bad")
    g = h.scripted(echo_handler(), id="good")
    lv = h.levee(f"""
        backends:
          - id: bad
            url: {bad.url}
          - id: good
            url: {g.url}
        load_balancing: round_robin
        retry:
          retry_on: [connect_failure, reset, timeout, 500, 502, 503, 504]
    """)
    d = Driver(lv)

    for _ in range(100):
        d.get()

    # failures_in_window 5 within 10s by default: the 13th request is the
    # 5th failure; the rate rule (50% of 20) and 5 in a row never would
    assert bad.count() == 13, f"the backend failing 1 in 3 got {bad.count()} of 100 requests"
    assert "circuit breaker open" in lv.stderr()


def test_all_breakers_open_gives_fast_503_with_retry_after(h):
    a, b = Switchable(h, "a"), Switchable(h, "b")
    lv = h.levee(f"""
        backends:
          - id: a
            url: {a.url}
          - id: b
            url: {b.url}
        circuit_breaker:
          failure_threshold: 2
          timeout: 10s
    """)
    c = lv.client()
    for i in range(4):
        resp = c.get(f"/x/{i}")
        assert resp.status == 500, resp  # not in retry_on here: passed through
    assert (a.count(), b.count()) == (2, 2)

    took = []
    for i in range(10):
        t0 = time.monotonic()
        resp = c.get(f"/open/{i}")
        took.append(time.monotonic() - t0)
        assert resp.status == 503, resp
        assert error_body(resp)["error"] == "no_backend"
        ra = resp.headers.get("retry-after")
        # seconds until the soonest probe: the open period is 10 s (+-20%)
        assert ra is not None and ra.isdigit() and 5 <= int(ra) <= 13, resp.headers

    assert (a.count(), b.count()) == (2, 2), "an open breaker let a request through"
    assert sorted(took)[8] < 0.1, f"503 no_backend not at once: {took}"
    assert max(took) < 1, took
    lines = [parse_combined(x) for x in lv.access_log_lines(14)][4:]
    assert all((ln["status"], ln["reason"], ln["attempts"]) == (503, "no_backend", 0)
               for ln in lines), lines[:3]


def test_breaker_disabled_keeps_sending(h):
    bad = Switchable(h, "bad")
    lv = h.levee(three(h, bad) + RETRY_500 + """
circuit_breaker:
  enabled: false
  failure_threshold: 3
""")
    c = lv.client()
    for i in range(30):
        assert c.get(f"/n/{i}").status == 200
    assert bad.count() >= 9, f"with the breaker disabled the backend got only {bad.count()} of 30"


def test_half_open_allows_one_probe_at_a_time(h):
    """After the open period, concurrent clients: the recovering backend sees
    one request at a time until success_threshold successes close it."""
    state = {"now": 0, "max": 0, "ok": 0, "max_before_close": 0}
    lock = threading.Lock()
    mode = {"fail": True}

    def respond(conn, req):
        # [arrival, decision] lies inside levee's [admission, report] of the
        # request: two probes in a row never overlap here, two at once do
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["ok"] < 3:
                state["max_before_close"] = max(state["max_before_close"], state["now"])
        fail = mode["fail"]
        if not fail:
            time.sleep(0.2)
        with lock:
            state["now"] -= 1
            if not fail:
                state["ok"] += 1
        conn.respond(500 if fail else 200, b"no\n" if fail else b"ok\n")

    bad = h.scripted(serve(respond), id="bad")
    lv = h.levee(three(h, bad) + RETRY_500 + """
circuit_breaker:
  failure_threshold: 2
  success_threshold: 3
  timeout: 1s
  half_open_requests: 1
""")
    c = lv.client()
    while len(bad.requests) < 2:
        assert c.get("/o").status == 200
    mode["fail"] = False
    t_open = time.monotonic()

    errors = []

    def load(k):
        try:
            cl = RawClient(lv.port)
            try:
                while time.monotonic() - t_open < 4:
                    assert cl.get(f"/p/{k}", timeout=30).status == 200
            finally:
                cl.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors, errors
    assert state["ok"] >= 3, f"only {state['ok']} successful requests at the recovered backend"
    assert state["max_before_close"] == 1, (
        f"{state['max_before_close']} probes in flight at once while half-open (allowed: 1)")
    assert state["max"] >= 2, "closed again, the backend should take concurrent requests"


def test_a_503_that_opens_the_last_breaker_reaches_the_client_as_a_503(h):
    """The only backend answers 503; that failure opens its breaker
    (failure_threshold 1), so the retry levee decided on has nowhere to go. The
    client must get a 503 -- the backend's own (not retried: passed through as
    sent) or levee's no_backend -- never a 502 levee makes up."""
    def respond(conn, req):
        conn.respond(503, b"maintenance\n", [("Content-Type", "text/plain")])

    b = h.scripted(serve(respond), id="only")
    lv = h.levee(f"""
        backends:
          - id: only
            url: {b.url}
        circuit_breaker:
          failure_threshold: 1
          timeout: 30s
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/m")
    elapsed = time.monotonic() - t0

    assert len(b.requests) == 1
    assert resp.status == 503, (
        f"the backend said 503 and no retry was possible; the client got {resp!r}")
    if resp.body != b"maintenance\n":
        assert error_body(resp)["error"] == "no_backend", resp
    assert elapsed < 5, elapsed


def test_state_and_usable_are_one_answer_through_the_breaker_cycle(h):
    """/backends/health's "state" and "usable", /health's count, the
    backend_health gauge and the dashboard's state all come from one verdict.
    An open breaker whose open period is over lets the next request through
    as a probe: usable, and "half_open" -- never "open" with "usable": true
    (which levee said before). While the probe is out (half_open_requests 1)
    it is half_open and not usable; a good probe closes it: "ok"."""
    release = threading.Event()
    mode = {"status": 500}

    def respond(conn, req):
        if mode["status"] is None:
            release.wait(DEADLINE)
            conn.respond(200, b"probe ok\n")
        else:
            conn.respond(mode["status"], b"x\n")

    b = h.scripted(serve(respond), id="b")
    lv = h.levee(f"""
        backends:
          - id: b
            url: {b.url}
        circuit_breaker:
          failure_threshold: 1
          success_threshold: 1
          half_open_requests: 1
          timeout: 1s
    """)

    def entry():
        e = backends_health(lv)["b"]
        br = e["breaker"]
        # one document, one `now`: state and usable agree with the breaker
        if br["state"] == "open":
            if br["next_change_ms"] > 0:
                assert (e["state"], e["usable"]) == ("open", False), e
            else:
                assert (e["state"], e["usable"]) == ("half_open", True), (
                    f"the open period is over: the next request is a probe, so the "
                    f"backend is usable and half_open: {e}")
        assert not (e["state"] == "open" and e["usable"]), e
        return e

    assert lv.get("/fail").status == 500
    e = entry()
    assert e["breaker"]["state"] == "open", e

    e = wait_for(lambda: (lambda x: x if x["usable"] else None)(entry()), 10, 0.02,
                 "the open period to end")
    assert (e["state"], e["breaker"]["state"], e["breaker"]["next_change_ms"]) == (
        "half_open", "open", 0), e
    for status, doc in [(r.status, json.loads(r.body)) for r in (admin_get(lv, "/health"),)]:
        assert (status, doc["status"], doc["backends"]["healthy"]) == (200, "healthy", 1), doc
    assert scrape(lv).get("backend_health", backend="b") == 1
    wait_for(lambda: (admin_json(lv, "/api/history")["points"] or [{}])[-1]
             .get("backends", {}).get("b", {}).get("state") == "half_open", 10, 0.05,
             "the dashboard's state to say half_open")

    # the probe: in flight, it takes the only slot
    mode["status"] = None
    probe = Background(lv.get, "/probe")
    e = wait_for(lambda: (lambda x: x if x["active_requests"] == 1 else None)(entry()), 10,
                 0.02, "the probe in flight")
    assert (e["state"], e["usable"], e["breaker"]["state"]) == ("half_open", False,
                                                               "half_open"), e
    assert scrape(lv).get("backend_health", backend="b") == 0
    release.set()
    assert probe.result().status == 200
    e = wait_for(lambda: (lambda x: x if x["breaker"]["state"] == "closed" else None)(entry()),
                 10, 0.02, "the breaker to close")
    assert (e["state"], e["usable"]) == ("ok", True), e
