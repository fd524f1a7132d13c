"""40 — active health checks: only backends with health_check_enabled are
checked; `unhealthy_threshold` failed checks (bad status, outside
expected_status, or no answer within the check timeout) take a backend out of
rotation, `healthy_threshold` passes bring it back, ramping up over
`slow_start`; with every backend unhealthy levee answers 503 no_backend at
once, with Retry-After.

Scripted backends answer their health path as the test says and 200 (with
their id as the body) to everything else; they record both kinds of request.
"""

import threading
import time

import pytest

from adminutil import admin_json
from harness import error_body, serve, wait_for


class Checked:
    """A scripted backend whose /health answers `health` (a status, or
    "hang"), and that answers other requests 200 with its id."""

    def __init__(self, h, id, health=200):
        self.id = id
        self.health = health
        self.status = 200  # of the answers to other requests
        self.checks = []  # (arrival time, answer, user agent)
        self.traffic = []  # arrival times of other requests
        self.lock = threading.Lock()
        self.unhang = threading.Event()
        self.backend = h.scripted(serve(self._respond), id=id)

    def _respond(self, conn, req):
        if req.path == "/health":
            answer = self.health
            with self.lock:
                self.checks.append((req.received_at, answer, req.headers.get("user-agent")))
            if answer == "hang":
                self.unhang.wait(10)
                return
            conn.respond(answer, b"health\n")
        else:
            with self.lock:
                self.traffic.append(req.received_at)
            conn.respond(self.status, self.id.encode())

    def set_health(self, answer):
        self.health = answer
        if answer != "hang":
            self.unhang.set()

    @property
    def url(self):
        return self.backend.url

    def n_checks(self, pred=lambda answer: True, after=0.0):
        with self.lock:
            return sum(1 for t, a, _ua in self.checks if t >= after and pred(a))

    def n_traffic(self):
        with self.lock:
            return len(self.traffic)


def entry(b, checked=True):
    return (f"  - id: {b.id}\n    url: {b.url}\n"
            + ("    health_check_enabled: true\n" if checked else ""))


def config(backends, health, extra=""):
    text = "backends:\n" + "".join(entry(b, c) for b, c in backends)
    text += "health_check:\n" + "".join(f"  {k}: {v}\n" for k, v in health.items())
    return text + extra


FAST = {"interval": "200ms", "timeout": "300ms", "unhealthy_threshold": 2,
        "healthy_threshold": 2}


# A breaker that opens after two 500s and stays open a minute. Round robin:
# these tests count failures reaching a backend, which peak_ewma (the
# default) would steer away from after the first.
BREAKER_ON_500 = """
load_balancing: round_robin
circuit_breaker:
  failure_threshold: 2
  timeout: 1m
retry:
  retry_on: [connect_failure, reset, timeout, 500, 502, 503, 504]
"""


class Driver:
    """Sequential GETs on one keep-alive connection; remembers who answered."""

    def __init__(self, lv):
        self.c = lv.client()
        self.n = 0
        self.log = []  # (time answered, backend id)

    def get(self, expect=200):
        self.n += 1
        resp = self.c.get(f"/t/{self.n}", timeout=30)
        if expect is not None:
            assert resp.status == expect, resp
        self.log.append((time.monotonic(), resp.body.decode(errors="replace")))
        return resp

    def until(self, pred, timeout, what, pace=0.01):
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
            self.get()
            time.sleep(pace)

    def until_quiet(self, b, timeout, run=20):
        """Drives requests until `run` in a row did not reach b."""
        deadline = time.monotonic() + timeout
        quiet, last = 0, b.n_traffic()
        while quiet < run:
            assert time.monotonic() < deadline, (
                f"{b.id} still gets traffic {timeout}s after failing its health checks")
            self.get()
            now = b.n_traffic()
            quiet = quiet + 1 if now == last else 0
            last = now


@pytest.mark.parametrize("failure", [503, "hang"], ids=["status_503", "check_timeout"])
def test_failing_checks_take_a_backend_out_and_passing_ones_bring_it_back(h, failure):
    sick = Checked(h, "sick", health=failure)
    g1 = Checked(h, "g1")
    g2 = Checked(h, "g2")  # not checked
    # Round robin: until_quiet below takes 20 requests in a row that miss
    # `sick` as the sign that its checks took it out; peak_ewma (the default)
    # may skip a backend that long while it still counts as healthy.
    lv = h.levee(config([(sick, True), (g1, True), (g2, False)], FAST,
                        "workers: 2\nload_balancing: round_robin\n"))
    d = Driver(lv)

    # out: after unhealthy_threshold failed checks, no more traffic; clients see only 200s
    d.until(lambda: sick.n_checks() >= 2, 10, "two failed checks")
    d.until_quiet(sick, 4)
    before = sick.n_traffic()
    for i in range(30):
        d.get()
        resp = lv.get(f"/fresh/{i}")  # new connections: both workers
        assert resp.status == 200, resp
    assert sick.n_traffic() == before, "an unhealthy backend got traffic"

    # back: after healthy_threshold passing checks
    t_switch = time.monotonic()
    sick.set_health(200)
    d.until(lambda: sick.n_traffic() > before, 6, "traffic at the recovered backend")
    first_back = sick.traffic[before]
    passes = sick.n_checks(lambda a: a == 200, after=t_switch)
    with sick.lock:
        passes_before_traffic = sum(1 for t, a, _ua in sick.checks
                                    if a == 200 and t_switch <= t < first_back)
    assert passes_before_traffic >= 2, (
        f"traffic came back after {passes_before_traffic} passing check(s); "
        f"healthy_threshold is 2 ({passes} passes so far)")

    # only backends with health_check_enabled are checked, with levee's user agent
    assert g1.n_checks() >= 3
    assert g2.n_checks() == 0, "a backend without health_check_enabled was checked"
    assert {ua for _t, _a, ua in sick.checks} == {"levee-health-check"}


def test_expected_status_range_is_respected(h):
    a = Checked(h, "a", health=204)  # inside 200-299
    b = Checked(h, "b", health=302)  # outside
    lv = h.levee(config([(a, True), (b, True)], dict(FAST, expected_status="200-299"),
                        "load_balancing: round_robin\n"))  # as above: until_quiet
    d = Driver(lv)

    d.until(lambda: b.n_checks() >= 2 and a.n_checks() >= 2, 10, "two checks of each backend")
    d.until_quiet(b, 4)
    before_a = a.n_traffic()
    for _ in range(30):
        d.get()
    assert a.n_traffic() == before_a + 30, "the backend answering 204 should take all traffic"


def test_all_backends_unhealthy_gives_fast_503_with_retry_after(h):
    a = Checked(h, "a", health=503)
    b = Checked(h, "b", health=503)
    lv = h.levee(config([(a, True), (b, True)], FAST))
    c = lv.client()

    def refused():
        resp = c.get("/x", timeout=30)
        assert resp.status in (200, 503), resp
        return resp.status == 503

    wait_for(refused, timeout=10, interval=0.02, what="503 with both backends unhealthy")
    traffic = a.n_traffic() + b.n_traffic()
    took = []
    for i in range(10):
        t0 = time.monotonic()
        resp = c.get(f"/down/{i}")
        took.append(time.monotonic() - t0)
        assert resp.status == 503, resp
        assert error_body(resp)["error"] == "no_backend"
        ra = resp.headers.get("retry-after")
        # the soonest next check is <= 200 ms away: a second or so
        assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 5, resp.headers
    assert a.n_traffic() + b.n_traffic() == traffic
    assert sorted(took)[8] < 0.1, f"503 no_backend not at once: {took}"
    assert max(took) < 1, took


def test_with_no_backend_usable_the_first_passing_check_brings_one_back(h):
    """The last resort: with every backend unhealthy, one passing check lets
    a backend serve (its open breaker probing at once) rather than levee
    answering 503 until `healthy_threshold` checks (10 here, 2 s) have
    passed. While another backend is usable, rise counts in full (the test
    above)."""
    a = Checked(h, "a")
    b = Checked(h, "b", health=503)
    lv = h.levee(config([(a, True), (b, True)], dict(FAST, healthy_threshold=10), BREAKER_ON_500))
    d = Driver(lv)
    d.until(lambda: b.n_checks() >= 2, 10, "two failed checks of b")
    d.until_quiet(b, 4)
    a.status = 500
    failing = a.n_traffic()
    while a.n_traffic() < failing + 2:  # two failures: a's breaker opens
        assert d.get(expect=None).status in (500, 502, 503)
    a.set_health(503)  # the checks see a's outage too
    t_down = time.monotonic()
    wait_for(lambda: a.n_checks(lambda x: x == 503, after=t_down) >= 3, 10, what="a's failed checks")
    resp = d.get(expect=503)
    assert error_body(resp)["error"] == "no_backend"

    a.status = 200
    t_switch = time.monotonic()
    a.set_health(200)
    deadline = time.monotonic() + 5
    while d.get(expect=None).status != 200:
        assert time.monotonic() < deadline, "a never served after passing its checks"
        time.sleep(0.01)
    passes = a.n_checks(lambda x: x == 200, after=t_switch)
    assert 1 <= passes <= 5, f"a served after {passes} passing checks (rise is 10)"
    assert d.log[-1][1] == "a"
    # levee answers again: /health says degraded (200), not unhealthy (503)
    health = admin_json(lv, "/health")
    if a.n_checks(lambda x: x == 200, after=t_switch) < 10:  # a has not risen yet
        assert health["status"] == "degraded", health
        assert health["backends"] == {"healthy": 0, "total": 2}, health
    for _ in range(20):
        d.get()
    assert "taking requests as the last resort" in lv.stderr()


def test_slow_start_ramps_a_recovered_backend_up(h):
    a = Checked(h, "a", health=503)
    b = Checked(h, "b")
    # round robin: the shares below are round robin's (peak_ewma, the
    # default, sends a sequential client's requests to the cheaper of two)
    lv = h.levee(config([(a, True), (b, True)], dict(FAST, slow_start="4s"),
                        "load_balancing: round_robin\n"))
    d = Driver(lv)

    d.until(lambda: a.n_checks() >= 2, 10, "two failed checks")
    d.until_quiet(a, 4)
    t_switch = time.monotonic()
    a.set_health(200)
    d.until(lambda: a.n_checks(lambda x: x == 200, after=t_switch) >= 2, 6, "two passes")
    with a.lock:
        t_back = [t for t, x, _ua in a.checks if x == 200 and t >= t_switch][1]
    # sample until well past the end of slow start
    while time.monotonic() < t_back + 5.5:
        d.get(expect=200)

    def share(t_from, t_to):
        picks = [who for t, who in d.log if t_from <= t < t_to]
        assert len(picks) >= 30, f"only {len(picks)} requests in [{t_from:.1f}, {t_to:.1f}]"
        return picks.count("a") / len(picks), len(picks)

    early, n_early = share(t_back, t_back + 1.0)
    late, n_late = share(t_back + 4.5, t_back + 5.5)
    # round robin over two backends gives 0.5 at once without slow start; the
    # ramp (10% -> 100% over 4 s) gives about 0.2 in the first second
    assert early < 0.35, (
        f"recovered backend got {early:.0%} of {n_early} requests in its first second")
    assert early > 0, "the recovered backend got no traffic at all in its first second"
    assert 0.4 <= late <= 0.6, f"after slow start it got {late:.0%} of {n_late} requests"


def test_passing_checks_do_not_reopen_a_breaker_whose_traffic_fails(h):
    """The backend's /health passes while its requests fail: the breaker opens
    (timeout 1m) and stays shut — passing checks must not let it back in, or a
    backend with a healthy health path would never be set aside."""
    flaky = Checked(h, "flaky")
    flaky.status = 500
    good = Checked(h, "good")
    lv = h.levee(config([(flaky, True), (good, False)], FAST, BREAKER_ON_500))
    d = Driver(lv)

    d.until(lambda: flaky.n_traffic() >= 2, 10, "two failures: the breaker opens")
    opened = flaky.n_traffic()
    t_open = time.monotonic()
    while time.monotonic() - t_open < 2.5:  # a dozen passing checks meanwhile
        d.get()
        time.sleep(0.01)
    assert flaky.n_checks(lambda a: a == 200, after=t_open) >= 5
    assert flaky.n_traffic() == opened, "passing checks let traffic back to a failing backend"


def test_recovery_seen_by_checks_lets_an_open_breaker_probe_at_once(h):
    """A backend its checks had taken out comes back: its open breaker (timeout
    1m) lets a probe through at once instead of waiting out the minute."""
    flaky = Checked(h, "flaky")
    flaky.status = 500
    good = Checked(h, "good")
    lv = h.levee(config([(flaky, True), (good, False)], FAST, BREAKER_ON_500))
    d = Driver(lv)

    d.until(lambda: flaky.n_traffic() >= 2, 10, "two failures: the breaker opens")
    flaky.set_health(503)  # the outage becomes visible to the checks
    t_down = time.monotonic()
    wait_for(lambda: flaky.n_checks(lambda a: a == 503, after=t_down) >= 3, 10,
             what="failed checks")
    flaky.status = 200
    flaky.set_health(200)
    before = flaky.n_traffic()
    d.until(lambda: flaky.n_traffic() >= before + 10, 8, "traffic back at the recovered backend")
