"""51 — rate limits shared through Redis (`rate_limit.store: redis`): several
levee processes enforce one limit; Redis down, killed, restarted or slow
never stalls a request (rate_limit.on_store_error decides), and levee says
so in its log and metrics.

Tests that only read and write keys use the suite's redis-server
($LEVEE_TEST_REDIS, set by .ci/run) with a key prefix of their own; tests
that kill, restart or block Redis start their own (redisutil.RedisServer),
as does every test when $LEVEE_TEST_REDIS is not set.

`redis.timeout` is set long (1-2 s) wherever the test checks that levee does
not wait for a dead Redis: a request that waited for it would take that long,
far above the bounds checked.
"""

import json
import math
import re
import threading
import time

import pytest

from adminutil import admin_get
from harness import build_request, error_body, wait_for
from redisutil import RespConn, redis_any, redis_own, unique_prefix  # noqa: F401 (fixtures)

PEER_A = "127.0.0.1"
PEER_B = "127.0.0.2"
# seconds: "levee did not wait for Redis". Wide (a shared, loaded machine
# serves a request in 0.1 s at times) yet far below what waiting would cost:
# each test makes waiting take 1 s or more (redis.timeout, or a Redis asleep
# for 3 s).
FAST = 0.5


# --------------------------------------------------------------------------
# helpers


def backend_yaml(h, id="b1"):
    d = h.demo(id)
    return d, f"backends:\n  - id: {id}\n    url: {d.url}\n"


def store_yaml(address, prefix, timeout="1s", on_store_error=None):
    """The store part of a rate_limit section (two-space indented)."""
    out = f"""  store: redis
  redis:
    address: {address}
    timeout: {timeout}
    key_prefix: "{prefix}"
"""
    if on_store_error:
        out += f"  on_store_error: {on_store_error}\n"
    return out


def metrics(lv):
    resp = admin_get(lv, "/metrics")
    assert resp.status == 200, resp
    out = {}
    for line in resp.body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def store_up(lv):
    return metrics(lv)["levee_rate_limit_store_up"]


def fallbacks(lv):
    return metrics(lv)["levee_rate_limit_store_fallbacks_total"]


def store_status(lv):
    """The rate_limit_store object of the admin's /backends/health."""
    resp = admin_get(lv, "/backends/health")
    assert resp.status == 200, resp
    return json.loads(resp.body)["rate_limit_store"]


def wait_store_up(lv, workers, timeout=15):
    wait_for(lambda: store_up(lv) == workers, timeout,
             what=f"levee_rate_limit_store_up {workers} on {lv.name}")


def pipelined(client, n, target="/p", headers=None):
    client.send(b"".join(build_request("GET", f"{target}?i={i}", headers) for i in range(n)))
    return [client.read_response().status for _ in range(n)]


def timed_get(client, target, headers=None):
    t0 = time.monotonic()
    resp = client.get(target, headers, timeout=20)
    return resp, time.monotonic() - t0


class Hammer:
    """Sequential keep-alive GETs for `seconds`: (sent, received, status)."""

    def __init__(self, lv, source_ip=None, headers=None):
        self.client = lv.client(source_ip=source_ip)
        self.headers = headers
        self.log = []

    def run(self, seconds):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            i += 1
            sent = time.monotonic()
            resp = self.client.get(f"/h?n={i}", self.headers, timeout=20)
            assert resp.status in (200, 429), resp
            self.log.append((sent, time.monotonic(), resp.status))
        return self

    def admitted(self):
        return sum(1 for _s, _r, st in self.log if st == 200)


def lost_refill(logs, full_after):
    """Time nobody asked for longer than a full refill takes (see test_50)."""
    events = sorted((s, r) for log in logs for s, r, _st in log)
    lost, busy_until = 0.0, events[0][0]
    for sent, received in events:
        if sent - busy_until > full_after:
            lost += sent - busy_until - full_after
        busy_until = max(busy_until, received)
    return lost


def run_parallel(hammers, seconds):
    errors = []

    def one(hm):
        try:
            hm.run(seconds)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(hm,)) for hm in hammers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not errors, errors
    return hammers


# --------------------------------------------------------------------------
# one limit for several levee processes


def test_two_levees_share_one_global_limit(redis_any, h):
    rate, burst, seconds = 50, 10, 5
    _d, backends = backend_yaml(h)
    cfg = backends + f"""
workers: 2
rate_limit:
  requests_per_second: {rate}
  burst: {burst}
""" + store_yaml(redis_any.address, unique_prefix("global"), timeout="1s",
                 on_store_error="deny")
    lv1, lv2 = h.levee(cfg), h.levee(cfg)
    wait_store_up(lv1, 2)
    wait_store_up(lv2, 2)

    hammers = run_parallel([Hammer(lv1, PEER_A), Hammer(lv1, PEER_B),
                            Hammer(lv2, PEER_A), Hammer(lv2, PEER_B)], seconds)
    got = sum(hm.admitted() for hm in hammers)
    start = min(hm.log[0][0] for hm in hammers)
    span = max(hm.log[-1][1] for hm in hammers) - start
    expected = burst + rate * span
    lost = lost_refill([hm.log for hm in hammers], burst / rate) * rate
    sent = sum(len(hm.log) for hm in hammers)
    print(f"two levees sharing {rate}/s burst {burst} through Redis for {span:.2f}s: "
          f"{got} admitted, {expected:.0f} expected ({100 * (got - expected) / expected:+.1f} %)")
    assert sent > 3 * got, f"{sent} requests for {got} admitted: the clients were too slow"
    assert expected - 0.1 * expected - 10 - lost <= got <= expected + 0.1 * expected + 10, (
        f"{got} admitted by two levees in {span:.2f}s sharing {rate}/s burst {burst}: expected "
        f"{expected:.0f} +-10% +-10 (per levee: {hammers[0].admitted() + hammers[1].admitted()}, "
        f"{hammers[2].admitted() + hammers[3].admitted()})")
    assert got < 0.7 * 2 * expected, "as much as two separate limiters would allow"
    for lv in (lv1, lv2):
        m = metrics(lv)
        assert m["levee_rate_limit_store_fallbacks_total"] == 0, (
            f"{lv.name} decided without Redis: the count above is not Redis' alone")
    refused = sum(len(hm.log) - hm.admitted() for hm in hammers)
    counted = sum(metrics(lv)['rate_limit_rejected_total{scope="global"}'] for lv in (lv1, lv2))
    assert counted == refused


def test_per_client_limit_and_sliding_window_are_shared_across_levees(redis_any, h):
    _d, backends = backend_yaml(h)
    prefix = unique_prefix("client")
    cfg = backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2   # no refill during the test
    burst: 3
""" + store_yaml(redis_any.address, prefix)
    lv1, lv2 = h.levee(cfg), h.levee(cfg)
    wait_store_up(lv1, 1)
    wait_store_up(lv2, 1)

    assert pipelined(lv1.client(source_ip=PEER_B), 2) == [200, 200]
    assert pipelined(lv2.client(source_ip=PEER_B), 2) == [200, 429], (
        "the second levee did not know the client's first two requests")
    assert pipelined(lv1.client(source_ip=PEER_B), 1) == [429]
    assert pipelined(lv2.client(source_ip=PEER_A), 1) == [200], "another client was limited"
    keys = redis_any.keys(prefix + "*")
    assert any("127.0.0.2" in k for k in keys), keys
    for lv in (lv1, lv2):
        assert fallbacks(lv) == 0

    # the sliding window through Redis: 10 per 1 s window, shared
    wprefix = unique_prefix("window")
    wcfg = backends + """
rate_limit:
  algorithm: sliding_window
  window: 1s
  per_client:
    requests_per_second: 10
""" + store_yaml(redis_any.address, wprefix)
    w1, w2 = h.levee(wcfg), h.levee(wcfg)
    wait_store_up(w1, 1)
    wait_store_up(w2, 1)
    t0 = time.monotonic()
    first = pipelined(w1.client(), 8)
    second = pipelined(w2.client(), 8)
    elapsed = time.monotonic() - t0
    total = (first + second).count(200)
    assert first == [200] * 8, first
    assert 10 <= total <= 10 + int(10 * elapsed) + 1, (
        f"{total} of 16 admitted by two levees sharing a sliding window of 10 per second "
        f"({elapsed:.3f}s): {first} {second}")


def test_sliding_window_retry_after_through_redis_waits_for_the_next_window(redis_any, h):
    """A client that used the whole current window can only pass in the next
    one, once this window's share has decayed enough: Retry-After is the rest
    of this window plus w * (1 - (limit - 1) / count), as the local store says.
    (Windows are aligned on Redis' clock, the machine's: 5 per 10 s here.)"""
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  algorithm: sliding_window
  window: 10s
  per_client:
    requests_per_second: 0.5
""" + store_yaml(redis_any.address, unique_prefix("wretry")))
    wait_store_up(lv, 1)
    # well inside a window, so that all six land in the same one
    wait_for(lambda: 0.2 <= time.time() % 10 <= 7, timeout=15, interval=0.05,
             what="the start of a window")
    c = lv.client()
    c.send(b"".join(build_request("GET", f"/w?i={i}") for i in range(6)))
    resps = [c.read_response() for _ in range(6)]
    into = time.time() % 10
    assert [r.status for r in resps] == [200] * 5 + [429], [r.status for r in resps]
    retry_after = int(resps[-1].headers.get("Retry-After"))
    expected = math.ceil(10 - into + 10 * (1 - 4 / 5))
    assert expected - 1 <= retry_after <= expected + 1, (retry_after, expected, into)
    assert fallbacks(lv) == 0


# --------------------------------------------------------------------------
# Redis unavailable


DOWN_CFG = """
rate_limit:
  requests_per_second: 1000
  burst: 1000
  per_client:
    requests_per_second: 0.2
    burst: 2
"""


@pytest.mark.parametrize("mode,expected", [
    ("local", [200, 200, 429, 429, 429, 429]),
    ("allow", [200] * 6),
    ("deny", [429] * 6),
])
def test_redis_down_from_the_start_on_store_error_decides_at_once(h, mode, expected):
    _d, backends = backend_yaml(h)
    dead = h.closed_port()
    lv = h.levee(backends + DOWN_CFG + store_yaml(f"127.0.0.1:{dead}", unique_prefix("down"),
                                                   timeout="1s", on_store_error=mode))
    lv.client(source_ip=PEER_B).get("/warm-up")  # levee's first request, another client
    c = lv.client(source_ip=PEER_A)
    base = fallbacks(lv)
    got, slow = [], []
    for i in range(6):
        resp, took = timed_get(c, f"/d/{i}", [("X-Client", "x")])
        got.append(resp.status)
        if took >= FAST:
            slow.append(round(took, 3))
        if resp.status == 429:
            assert error_body(resp)["error"] == "rate_limited"
            assert int(resp.headers.get("Retry-After", "0")) >= 1, resp
    assert got == expected, f"on_store_error: {mode}"
    assert not slow, f"requests waited for a dead Redis: {slow} s (bound {FAST}s)"
    assert store_up(lv) == 0
    assert fallbacks(lv) - base == 6, "each request decided without the store is a fallback"
    status = store_status(lv)
    assert (status["state"], status["on_store_error"]) == ("down", mode), status
    assert status["fallbacks"] == fallbacks(lv), status


def test_unresponsive_redis_from_the_start_does_not_stall_requests(h):
    """A Redis address that never completes a TCP handshake (a host gone,
    dropped packets): levee must not hold requests while it tries."""
    _d, backends = backend_yaml(h)
    port = h.unresponsive_listener()
    if port is None:
        pytest.skip("this kernel completes connections to a full accept queue")
    lv = h.levee(backends + DOWN_CFG + store_yaml(f"127.0.0.1:{port}", unique_prefix("hole"),
                                                   timeout="2s", on_store_error="local"))
    c = lv.client()
    got, slow = [], []
    end = time.monotonic() + 1.5  # spans several connection attempts
    while time.monotonic() < end:
        resp, took = timed_get(c, f"/u/{len(got)}")
        got.append(resp.status)
        if took >= FAST:
            slow.append(round(took, 3))
        time.sleep(0.02)
    assert got[:2] == [200, 200] and set(got[2:]) == {429}, got
    assert not slow, f"requests waited for an unreachable Redis: {slow} s"
    assert store_up(lv) == 0
    assert fallbacks(lv) == len(got)


def test_redis_down_from_the_start_is_logged(h):
    """An operator who points levee at a Redis that is not there must learn it
    from the log, as when a connected Redis goes away."""
    _d, backends = backend_yaml(h)
    dead = h.closed_port()
    lv = h.levee(backends + DOWN_CFG + store_yaml(f"127.0.0.1:{dead}", unique_prefix("log"),
                                                   on_store_error="local"))
    assert lv.get("/x").status == 200
    wait_for(lambda: "unreachable" in lv.stderr(), timeout=5,
             what="a log line saying the rate limit store is unreachable")


def test_store_error_deny_429_carries_the_ratelimit_fields(h):
    """README: a refused request gets Retry-After, RateLimit-Policy and
    RateLimit ("they are always on 429") — also when on_store_error: deny
    refuses it and only a per-client limit is configured."""
    _d, backends = backend_yaml(h)
    dead = h.closed_port()
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 5
""" + store_yaml(f"127.0.0.1:{dead}", unique_prefix("deny"), on_store_error="deny"))
    resp = lv.client().get("/x")
    assert resp.status == 429
    assert int(resp.headers.get("Retry-After", "0")) >= 1, resp
    assert resp.headers.get("RateLimit-Policy") is not None, resp
    assert resp.headers.get("RateLimit") is not None, resp


# --------------------------------------------------------------------------
# Redis killed and restarted, Redis slow


class Load:
    """Background requests to levee, each on a new connection (so that both
    workers get some) with a new X-API-Key (never limited): records
    (start, seconds, status or error)."""

    def __init__(self, lv):
        self.lv = lv
        self.log = []
        self.stop = threading.Event()
        self.go = threading.Event()  # cleared: hold between two requests
        self.go.set()
        self.idle = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def hold(self):
        """Returns once no request is in flight; none starts until release()."""
        self.idle.clear()
        self.go.clear()
        assert self.idle.wait(30), "the load did not pause"

    def release(self):
        self.go.set()

    def _run(self):
        i = 0
        while not self.stop.is_set():
            if not self.go.is_set():
                self.idle.set()
                self.go.wait(30)
            i += 1
            t0 = time.monotonic()
            try:
                resp = self.lv.get(f"/load/{i}", {"X-API-Key": f"load-{i}"}, timeout=20)
                outcome = resp.status
            except Exception as e:  # recorded; the test reports it
                outcome = repr(e)
            self.log.append((t0, time.monotonic() - t0, outcome))
            time.sleep(0.005)

    def finish(self):
        self.stop.set()
        self.go.set()
        self.thread.join(30)
        return self.log

    def count_since(self, t):
        return sum(1 for t0, _d, _o in self.log if t0 >= t)


def test_redis_killed_and_restarted_levee_keeps_serving_and_reconnects(redis_own, h):
    _d, backends = backend_yaml(h)
    cfg = backends + """
workers: 2
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 3
    key: header:X-API-Key
""" + store_yaml(redis_own.address, "levee:rl:", timeout="2s", on_store_error="local")
    lv1, lv2 = h.levee(cfg), h.levee(cfg)
    wait_store_up(lv1, 2)
    wait_store_up(lv2, 2)
    load = Load(lv1)
    try:
        wait_for(lambda: load.count_since(0) >= 20, 10, what="load before the kill")
        # Killed between two checks: Redis closes levee's connections cleanly.
        # (Killed with a check unread, it resets them: see the next test.)
        load.hold()
        killed_at = time.monotonic()
        redis_own.kill()
        load.release()
        wait_for(lambda: store_up(lv1) == 0 and store_up(lv2) == 0, 10,
                 what="levee_rate_limit_store_up 0 after the kill")
        down = store_status(lv1)
        assert (down["state"], down["workers_connected"]) == ("down", 0), down
        wait_for(lambda: load.count_since(killed_at + 1.0) >= 20, 15,
                 what="load while Redis is down")
        restarted_at = time.monotonic()
        redis_own.restart()
        wait_store_up(lv1, 2)
        wait_store_up(lv2, 2)
        back_at = time.monotonic()
        assert store_status(lv2) == {
            "type": "redis", "address": redis_own.address, "state": "up",
            "workers_connected": 2, "workers": 2, "on_store_error": "local",
            "fallbacks": fallbacks(lv2)}, store_status(lv2)
        wait_for(lambda: load.count_since(back_at) >= 20, 10, what="load after the restart")
    finally:
        log = load.finish()

    bad = [(round(t0 - killed_at, 2), o) for t0, _d, o in log if o != 200]
    assert not bad, f"requests failed around the Redis restart (s after the kill, outcome): {bad}"
    slow = [(round(t0 - killed_at, 2), round(d, 3)) for t0, d, _o in log if d >= 0.5]
    assert not slow, f"requests stalled around the Redis restart (s after the kill, s): {slow}"
    during = sum(1 for t0, _d, _o in log if killed_at <= t0 < restarted_at)
    assert during >= 20, f"only {during} requests while Redis was down"

    for lv in (lv1, lv2):
        err = lv.stderr()
        assert len(re.findall(r"rate limit store: .*unreachable", err)) == 1, err
        assert len(re.findall(r"rate limit store: connected", err)) == 2, (
            "one line when levee first connected, one when Redis came back:\n" + err)

    # the shared limit applies again: one key, two levees, 3 in total
    before = fallbacks(lv1) + fallbacks(lv2)
    key = [("X-API-Key", "after-restart")]
    assert pipelined(lv1.client(), 2, headers=key) == [200, 200]
    assert pipelined(lv2.client(), 2, headers=key) == [200, 429], (
        "after the restart the two levees do not share the limit")
    assert fallbacks(lv1) + fallbacks(lv2) == before
    assert any("after-restart" in k for k in redis_own.keys("levee:rl:*"))


def test_redis_killed_with_checks_in_flight_is_noticed_at_once(redis_own, h):
    """Redis dies while levee's checks are unread in its socket (a crash under
    load): the kernel resets levee's connection. levee must see the reset
    (in-flight checks fall back at once, the store is down, one log line) and
    reconnect when Redis is back, as after a clean close."""
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 100
""" + store_yaml(redis_own.address, "levee:rl:", timeout="2s", on_store_error="local"))
    wait_store_up(lv, 1)
    assert lv.get("/before").status == 200

    redis_own.pause()  # the next check stays unread in Redis' socket
    c = lv.client()
    c.send(build_request("GET", "/in-flight"))
    time.sleep(0.2)
    killed_at = time.monotonic()
    redis_own.kill()
    resp = c.read_response(timeout=20)
    waited = time.monotonic() - killed_at
    assert resp.status == 200, resp
    assert waited < 0.5, (
        f"the check in flight when Redis died was answered {waited:.2f}s after the kill "
        f"(redis.timeout 2s): levee did not notice the reset connection")

    took = []
    for i in range(3):
        t0 = time.monotonic()
        assert lv.get(f"/after-kill/{i}").status == 200
        took.append(round(time.monotonic() - t0, 3))
    assert max(took) < 0.5, f"requests after the kill took {took} s: each waited for Redis"
    wait_for(lambda: store_up(lv) == 0, 5, what="levee_rate_limit_store_up 0 after the kill")
    wait_for(lambda: "unreachable" in lv.stderr(), 5, what="the 'unreachable' log line")

    redis_own.restart()
    wait_store_up(lv, 1, timeout=10)
    before = fallbacks(lv)
    assert lv.get("/back").status == 200
    assert fallbacks(lv) == before, "Redis is back, yet levee still falls back"


def test_slow_redis_requests_complete_quickly_through_the_fallback(redis_own, h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 2
    key: header:X-API-Key
""" + store_yaml(redis_own.address, "levee:rl:", timeout="20ms", on_store_error="local"))
    wait_store_up(lv, 1)
    c = lv.client()
    resp = c.get("/before", [("X-API-Key", "before")])
    assert resp.status == 200
    assert fallbacks(lv) == 0, "Redis did not answer a check in 20 ms while idle"

    sleeper = RespConn(redis_own.host, redis_own.port, timeout=10)
    try:
        sleeper.send("DEBUG", "SLEEP", "3")
        # Redis is blocked once a PING on another connection gets no answer
        probe = RespConn(redis_own.host, redis_own.port, timeout=5)
        try:
            probe.send("PING")
            with pytest.raises(TimeoutError):
                probe.read_reply(timeout=0.05)
            blocked, woke = [], None
            while woke is None and len(blocked) < 40:
                resp, took = timed_get(c, f"/slow/{len(blocked)}", [("X-API-Key", "slow")])
                blocked.append((resp.status, took, time.monotonic()))
                try:
                    woke = sleeper.read_reply(timeout=0.001)
                except TimeoutError:
                    pass
            if woke is None:
                woke = sleeper.read_reply(timeout=10)
            assert woke == "OK", woke
            assert probe.read_reply(timeout=5) == "PONG"
        finally:
            probe.close()
    finally:
        sleeper.close()

    # Redis' reply to DEBUG SLEEP is looked for after each request: all but the
    # last request were answered while Redis slept
    inside = [(st, took) for st, took, _done in blocked[:-1]]
    assert len(inside) >= 3, f"only {len(inside)} requests while Redis slept"
    assert all(took < FAST for _st, took, _d in blocked), (
        f"requests while Redis was blocked took {[round(t, 3) for _s, t, _d in blocked]} s "
        f"(redis.timeout 20ms, bound {FAST}s)")
    # decided by the local limiter: 2 then 429 for the key
    assert [st for st, _t, _d in blocked][:3] == [200, 200, 429], blocked
    assert fallbacks(lv) >= len(inside)
    assert store_up(lv) == 1, "a slow Redis is not a lost connection"

    # Redis is back: checks go to it again (new keys, no new fallback)
    def answered_by_redis():
        f0 = fallbacks(lv)
        ok = c.get("/probe", [("X-API-Key", f"probe-{time.monotonic()}")]).status == 200
        return ok and fallbacks(lv) == f0

    wait_for(answered_by_redis, 5, what="a check answered by Redis after it woke")
    before = fallbacks(lv)
    key = [("X-API-Key", "after")]
    assert [c.get(f"/after/{i}", key).status for i in range(3)] == [200, 200, 429]
    assert fallbacks(lv) == before, "Redis answers again, yet levee still falls back"
    assert any(k.endswith("c:h:after") for k in redis_own.keys("levee:rl:*"))


def test_an_answer_decided_by_a_timer_is_written_at_once(redis_own, h):
    """Regression: levee batches a socket's writes until the loop is about
    to wait for events. A verdict that a timer decides (Redis did not answer
    within redis.timeout: the fallback) used to have its answer wait for the
    next event to wake the loop — the access log's flush timer, 100 ms, or
    with the log off, the next idle timeout: seconds."""
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
access_log: { path: "off" }
rate_limit:
  per_client:
    requests_per_second: 100
""" + store_yaml(redis_own.address, "levee:rl:", timeout="20ms", on_store_error="local"))
    wait_store_up(lv, 1)
    c = lv.client()
    assert c.get("/warm").status == 200
    redis_own.pause()  # every check now waits out redis.timeout
    try:
        for i in range(5):
            resp, took = timed_get(c, f"/t/{i}")
            assert resp.status == 200, resp
            assert took < FAST, f"request {i} took {took:.3f}s (redis.timeout 20ms, bound {FAST}s)"
    finally:
        redis_own.resume()
