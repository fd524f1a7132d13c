"""30 — retries: what a client sees when some backends fail.

A failed attempt (connect failure, reset, timeout, 502/503/504) is tried again
on a backend the request has not tried yet; a request that may have reached a
backend is retried only when it is idempotent (or the config says so); a body
above max_replay_body is not replayed; the retry budget caps retries in
flight; a backend's Retry-After is honoured when the retry would go back to it.
The access log's last field says why a request was not retried.

Scripted backends record every request; a unique X-Req-Id per client request
tells exactly which backends a request reached, and how many times.
"""

import json
import threading
import time
from collections import Counter

import pytest

from harness import (RawClient, build_request, echo_handler, error_body, http_get, parse_combined,
                     serve, sha256)


def arrivals(backend, rid):
    """How many times the request with X-Req-Id `rid` reached a ScriptedBackend."""
    return sum(1 for r in list(backend.requests) if r.headers.get("x-req-id") == rid)


def log_lines(lv, n):
    return [parse_combined(line) for line in lv.access_log_lines(n)]


def reset_after_request(conn):
    """Reads each request in full, then resets the connection (RST)."""
    conn.read_request()
    conn.reset()


def backends_yaml(*pairs, balancing="round_robin"):
    """Round robin unless told: these tests need the failing backend to keep
    being chosen (peak_ewma, the default, avoids it from its first failure)."""
    out = "backends:\n"
    for bid, url in pairs:
        out += f"  - id: {bid}\n    url: {url}\n"
    return out + (f"load_balancing: {balancing}\n" if balancing else "")


def hedges_of(lv):
    body = http_get(lv.admin_port, "/metrics", {"Host": f"127.0.0.1:{lv.admin_port}"}).body
    for line in body.decode().splitlines():
        if line.startswith("levee_hedges_total "):
            return int(float(line.split()[1]))
    return 0


# --------------------------------------------------------------------------
# failing backends are retried onto the others


def test_dead_backend_among_three_costs_clients_nothing(h):
    dead = h.closed_port()
    b1, b2 = h.demo("b1"), h.demo("b2")
    lv = h.levee(backends_yaml(("dead", f"http://127.0.0.1:{dead}"), ("b1", b1.url),
                               ("b2", b2.url)))
    c = lv.client()

    statuses = Counter()
    for i in range(300):
        resp = c.get(f"/r/{i}")
        statuses[resp.status] += 1

    assert statuses == {200: 300}, statuses
    lines = log_lines(lv, 300)
    assert Counter(ln["backend"] for ln in lines).keys() <= {"b1", "b2"}, lines[:5]
    retried = [ln for ln in lines if ln["attempts"] >= 2]
    assert retried, "no request was retried: the dead backend was never tried?"
    assert all(ln["attempts"] == 2 for ln in retried), retried[:5]
    # retried onto the others, never sent twice to a live one (but for the
    # hedges: with hedge_after: auto, a request slower than hedge_min on a
    # loaded machine gets a copy)
    hedges = hedges_of(lv)
    assert b1.stats()["requests"] + b2.stats()["requests"] == 300 + hedges


def test_backend_answering_503_to_everything_is_retried_elsewhere(h):
    sick = h.demo("sick", "--error-rate", "1", "--error-status", "503")
    good = h.demo("good")
    lv = h.levee(backends_yaml(("sick", sick.url), ("good", good.url)))
    c = lv.client()

    for i in range(40):
        resp = c.get(f"/s/{i}")
        assert resp.status == 200, resp
        assert resp.headers.get("x-backend-id") == "good", resp

    assert sick.stats()["requests"] >= 1, "the 503 backend was never tried"
    assert good.stats()["requests"] == 40
    lines = log_lines(lv, 40)
    assert any(ln["attempts"] == 2 and ln["backend"] == "good" for ln in lines), lines[:5]


def test_each_retry_goes_to_a_backend_not_tried_yet(h):
    def refuse(conn, req):
        conn.respond(503, f"busy {conn.backend.id}\n", [("Content-Type", "text/plain")])

    bs = [h.scripted(serve(refuse), id=f"n{i}") for i in range(3)]
    # random picks: without the "not tried yet" rule, three attempts would hit
    # three different backends only 2 times in 9
    lv = h.levee(backends_yaml(*[(b.id, b.url) for b in bs], balancing=None) + """
load_balancing: random
retry:
  max_attempts: 3
""")
    c = lv.client()

    for k in range(4):
        rid = f"spread-{k}"
        resp = c.get("/spread", [("X-Req-Id", rid)])

        # attempts exhausted: the last backend's own 503 goes to the client as it was sent
        assert resp.status == 503, resp
        assert resp.body.startswith(b"busy n"), resp
        assert [arrivals(b, rid) for b in bs] == [1, 1, 1], (
            f"request {rid} should reach each of the three backends once")
    lines = log_lines(lv, 4)
    for ln in lines:
        assert (ln["status"], ln["attempts"], ln["retry"]) == (503, 3, "attempts_exhausted"), ln


# --------------------------------------------------------------------------
# idempotency


def hit_first(lv, first, method, rid_prefix, headers=(), body=b"payload", tries=4):
    """Sends requests (a fresh X-Req-Id each) until one reaches `first`; returns
    (rid, response). With the other backends answering 200 at once, a request
    that reached `first` at all reached it first."""
    for k in range(tries):
        rid = f"{rid_prefix}-{k}"
        resp = lv.client().request(method, "/submit", [("X-Req-Id", rid), *headers], body=body)
        if arrivals(first, rid):
            return rid, resp
    raise AssertionError(f"none of {tries} requests went to {first.id}")


def test_post_to_a_resetting_backend_is_not_sent_twice(h):
    resetter = h.scripted(reset_after_request, id="resetter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("resetter", resetter.url), ("good", good.url)))

    rid, resp = hit_first(lv, resetter, "POST", "post")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "backend_reset"
    assert arrivals(resetter, rid) == 1
    assert arrivals(good, rid) == 0, "a POST that reached a backend was sent again"
    ln = [x for x in log_lines(lv, 1) if x["status"] == 502][0]
    assert ln["retry"] == "not_idempotent", ln


def test_post_whose_connect_failed_is_retried(h):
    dead = h.closed_port()
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("dead", f"http://127.0.0.1:{dead}"), ("good", good.url)))

    for k in range(4):
        rid = f"cpost-{k}"
        resp = lv.client().request("POST", "/submit", [("X-Req-Id", rid)], body=b"x" * 1000)
        assert resp.status == 200, resp
        assert arrivals(good, rid) == 1
        assert resp.json()["body_length"] == 1000

    lines = log_lines(lv, 4)
    assert any(ln["attempts"] == 2 for ln in lines), (
        "no POST was retried after a refused connect: " + repr(lines))


def test_non_idempotent_true_retries_a_post_that_was_reset(h):
    resetter = h.scripted(reset_after_request, id="resetter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("resetter", resetter.url), ("good", good.url)) + """
retry:
  non_idempotent: true
""")

    rid, resp = hit_first(lv, resetter, "POST", "nipost")

    assert resp.status == 200, resp
    assert (arrivals(resetter, rid), arrivals(good, rid)) == (1, 1)
    assert resp.json()["body_length"] == len(b"payload")


def test_idempotency_key_makes_a_post_retryable(h):
    resetter = h.scripted(reset_after_request, id="resetter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("resetter", resetter.url), ("good", good.url)) + """
retry:
  idempotency_key: true
""")

    rid, resp = hit_first(lv, resetter, "POST", "keyed",
                          headers=[("Idempotency-Key", "k-123")])
    assert resp.status == 200, resp
    assert (arrivals(resetter, rid), arrivals(good, rid)) == (1, 1)

    # the same POST without the key is not retried
    rid2, resp2 = hit_first(lv, resetter, "POST", "unkeyed")
    assert resp2.status == 502, resp2
    assert (arrivals(resetter, rid2), arrivals(good, rid2)) == (1, 0)


@pytest.mark.parametrize("method,retried", [("PUT", True), ("DELETE", True), ("PATCH", False)])
def test_idempotent_methods_are_retried_after_a_reset_and_patch_is_not(h, method, retried):
    resetter = h.scripted(reset_after_request, id="resetter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("resetter", resetter.url), ("good", good.url)))

    rid, resp = hit_first(lv, resetter, method, method.lower())

    if retried:
        assert resp.status == 200, resp
        assert (arrivals(resetter, rid), arrivals(good, rid)) == (1, 1)
    else:
        assert resp.status == 502, resp
        assert (arrivals(resetter, rid), arrivals(good, rid)) == (1, 0)


def test_post_answered_with_503_is_passed_through_not_retried(h):
    def busy(conn, req):
        conn.respond(503, b"overloaded\n", [("X-From", "busy")])

    b1 = h.scripted(serve(busy), id="busy")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("busy", b1.url), ("good", good.url)))

    rid, resp = hit_first(lv, b1, "POST", "p503")

    assert resp.status == 503, resp
    assert resp.body == b"overloaded\n" and resp.headers.get("x-from") == "busy", resp
    assert arrivals(good, rid) == 0
    ln = [x for x in log_lines(lv, 1) if x["status"] == 503][0]
    assert ln["retry"] == "not_idempotent", ln


def reset_after_head(conn):
    """Reads the head only, then resets: the body is cut off mid-way."""
    conn.read_request(body=False)
    conn.reset()


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
@pytest.mark.parametrize("failure", [reset_after_request, reset_after_head],
                         ids=["reset_after_body", "reset_after_head"])
def test_request_body_is_replayed_intact_on_retry(h, chunked, failure):
    resetter = h.scripted(failure, id="resetter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("resetter", resetter.url), ("good", good.url)))
    body = bytes(range(256)) * 200  # 50 KiB, below max_replay_body

    for k in range(4):
        rid = f"replay-{k}"
        c = lv.client()
        c.send(build_request("PUT", "/replay", [("X-Req-Id", rid)], body=body, chunked=chunked,
                             chunk_size=7000))
        resp = c.read_response(timeout=20)
        assert resp.status == 200, resp
        got = resp.json()
        assert (got["body_length"], got["body_sha256"]) == (len(body), sha256(body)), (
            f"{rid}: the backend that answered got a different body")
        if arrivals(resetter, rid):
            break
    else:
        raise AssertionError("no request went to the resetting backend")
    assert arrivals(good, rid) == 1


def test_backend_dying_mid_body_is_not_retried(h):
    def quitter(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"q" * 50000)
        time.sleep(0.2)
        conn.close()

    q = h.scripted(quitter, id="quitter")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(backends_yaml(("quitter", q.url), ("good", good.url)))

    for k in range(4):
        rid = f"cut-{k}"
        c = lv.client()
        resp = c.get("/big", [("X-Req-Id", rid)], timeout=20)
        assert resp.status == 200, resp
        if arrivals(q, rid):
            break
    else:
        raise AssertionError("no request went to the quitting backend")

    assert not resp.complete and resp.body_length == 50000, resp
    assert c.reader.eof, "levee cuts the client connection"
    assert arrivals(good, rid) == 0, "a response already started must not be retried"


# --------------------------------------------------------------------------
# replay limit


def test_body_above_max_replay_body_is_not_replayed(h):
    fail_next = {"on": False}

    def respond(conn, req):
        if fail_next["on"]:
            fail_next["on"] = False
            conn.respond(503, b"try later\n", [("Content-Type", "text/plain")])
        else:
            conn.respond(200, f"got {req.body_length}\n")

    b = h.scripted(serve(respond), id="only")
    lv = h.levee(f"""
        backends:
          - id: only
            url: {b.url}
        retry:
          non_idempotent: true
          max_replay_body: 64KiB
    """, access_log_format="json")
    c = lv.client()

    # below the limit: replayed after the 503
    fail_next["on"] = True
    small = b"s" * (32 * 1024)
    resp = c.request("POST", "/up", [("X-Req-Id", "small")], body=small)
    assert resp.status == 200, resp
    assert resp.body == b"got %d\n" % len(small)
    assert arrivals(b, "small") == 2

    # above it: the backend's 503 is the answer
    fail_next["on"] = True
    big = b"B" * (128 * 1024)
    resp = c.request("POST", "/up", [("X-Req-Id", "big")], body=big)
    assert resp.status == 503, resp
    assert resp.body == b"try later\n", "the backend's own 503 is passed through"
    assert arrivals(b, "big") == 1
    assert [r.body_length for r in b.requests if r.headers.get("x-req-id") == "big"] == [len(big)]

    lines = [json.loads(x) for x in lv.access_log_lines(2)]
    assert (lines[0]["status"], lines[0]["attempts"], lines[0]["retry"]) == (200, 2, None), lines[0]
    assert (lines[1]["status"], lines[1]["attempts"], lines[1]["retry"]) == (
        503, 1, "body_too_large"), lines[1]


# --------------------------------------------------------------------------
# budget


def budget_run(h, retry_yaml, clients, rounds):
    """`clients` threads, each sending `rounds` GETs at once, against a backend
    that answers 503 at once and one that answers 200 after 300 ms. Returns
    (max retries seen in flight at the good backend, number of requests that
    were retries, statuses, log lines)."""
    bad = h.scripted(serve(lambda conn, req: conn.respond(503, b"no\n")), id="bad")
    state = {"now": 0, "max": 0, "retries": 0}
    lock = threading.Lock()

    def slow_ok(conn, req):
        rid = req.headers.get("x-req-id")
        is_retry = arrivals(bad, rid) > 0  # bad recorded it before answering
        if is_retry:
            with lock:
                state["now"] += 1
                state["retries"] += 1
                state["max"] = max(state["max"], state["now"])
        try:
            time.sleep(0.3)
            conn.respond(200, b"ok\n")
        finally:
            if is_retry:
                with lock:
                    state["now"] -= 1

    good = h.scripted(serve(slow_ok), id="good")
    lv = h.levee(backends_yaml(("bad", bad.url), ("good", good.url)) + retry_yaml + """
circuit_breaker:
  enabled: false
""")
    statuses = Counter()
    errors = []
    barrier = threading.Barrier(clients)

    def client(k):
        try:
            c = RawClient(lv.port)
            try:
                for i in range(rounds):
                    barrier.wait(30)
                    resp = c.get("/b", [("X-Req-Id", f"b{k}-{i}")], timeout=30)
                    with lock:
                        statuses[resp.status] += 1
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    lines = log_lines(lv, clients * rounds)
    return state["max"], state["retries"], statuses, lines


def test_retry_budget_min_retry_concurrency_caps_retries_in_flight(h):
    most, retries, statuses, lines = budget_run(h, """
retry:
  budget_percent: 0
  min_retry_concurrency: 2
""", clients=12, rounds=3)

    assert sum(statuses.values()) == 36
    assert set(statuses) <= {200, 503}, statuses
    assert retries >= 2, "the budget allows some retries"
    assert most <= 2, f"{most} retries in flight at once; the budget allows 2"
    skipped = [ln for ln in lines if ln["retry"] == "budget"]
    assert skipped, "no request was refused a retry by the budget"
    assert all(ln["status"] == 503 and ln["attempts"] == 1 for ln in skipped), skipped[:3]
    assert statuses[503] == len(skipped)


def test_retry_budget_percent_of_requests_in_flight(h):
    # 12 clients: at most 12 requests in flight, 25% of that is 3 retries
    most, retries, statuses, lines = budget_run(h, """
retry:
  budget_percent: 25
  min_retry_concurrency: 0
""", clients=12, rounds=3)

    assert sum(statuses.values()) == 36
    assert retries >= 1, "the budget allows some retries"
    assert most <= 3, f"{most} retries in flight at once with <= 12 requests and 25%"
    assert any(ln["retry"] == "budget" for ln in lines), "no budget skip in the access log"


# --------------------------------------------------------------------------
# Retry-After


def test_retry_after_is_honoured_when_the_retry_goes_back_to_the_same_backend(h):
    seen = Counter()

    def respond(conn, req):
        rid = req.headers.get("x-req-id")
        seen[rid] += 1
        if seen[rid] == 1:
            conn.respond(503, b"later\n", [("Retry-After", "1")])
        else:
            conn.respond(200, b"now\n")

    b = h.scripted(serve(respond), id="only")
    lv = h.levee(f"""
        backends:
          - id: only
            url: {b.url}
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/ra", [("X-Req-Id", "ra1")])
    elapsed = time.monotonic() - t0

    assert resp.status == 200 and resp.body == b"now\n", resp
    assert elapsed >= 0.9, f"answered after {elapsed:.2f}s: Retry-After: 1 was not honoured"
    assert elapsed < 10
    times = [r.received_at for r in b.requests if r.headers.get("x-req-id") == "ra1"]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.9, times
    ln = log_lines(lv, 1)[0]
    assert (ln["status"], ln["attempts"]) == (200, 2), ln


def test_retry_after_beyond_the_deadline_passes_the_503_through(h):
    def respond(conn, req):
        conn.respond(503, b"later\n", [("Retry-After", "2")])

    b = h.scripted(serve(respond), id="only")
    lv = h.levee(f"""
        backends:
          - id: only
            url: {b.url}
        timeouts:
          backend: 1s
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/ra", [("X-Req-Id", "ra2")])
    elapsed = time.monotonic() - t0

    assert resp.status == 503, resp
    assert resp.body == b"later\n", "the backend's 503 is passed through as it was sent"
    assert resp.headers.get("retry-after") == "2", resp.headers
    assert arrivals(b, "ra2") == 1
    assert elapsed < 0.9, f"{elapsed:.2f}s: levee waited for a retry it could not make"
    ln = log_lines(lv, 1)[0]
    assert (ln["status"], ln["attempts"], ln["retry"]) == (503, 1, "deadline"), ln


def test_retry_after_does_not_delay_a_retry_on_another_backend(h):
    def busy(conn, req):
        conn.respond(503, b"later\n", [("Retry-After", "5")])

    b1 = h.scripted(serve(busy), id="busy")
    b2 = h.scripted(echo_handler(), id="free")
    lv = h.levee(backends_yaml(("busy", b1.url), ("free", b2.url)))

    for k in range(3):
        rid = f"other-{k}"
        t0 = time.monotonic()
        resp = lv.client().get("/ra", [("X-Req-Id", rid)])
        elapsed = time.monotonic() - t0
        assert resp.status == 200, resp
        assert elapsed < 3, f"{elapsed:.2f}s: Retry-After of one backend delayed a retry on another"
        assert arrivals(b2, rid) == 1
    assert len(b1.requests) >= 1, "the busy backend was never tried"
