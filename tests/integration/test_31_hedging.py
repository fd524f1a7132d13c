"""31 — hedging: an idempotent request with no response head after
`hedge_after` gets a second copy on another backend; the first answer wins and
the other try's connection is closed. Non-idempotent requests are never hedged.
"""

import threading
import time

import pytest

from harness import build_request, echo_handler, error_body, parse_combined, sha256, wait_for


class Hanger:
    """A scripted backend that reads a request, never answers, and records
    whether (and when) levee closed the connection."""

    def __init__(self, h, id):
        self.closed = []  # (X-Req-Id, closed by the peer within 20 s)
        self.lock = threading.Lock()
        self.backend = h.scripted(self._handle, id=id)

    def _handle(self, conn):
        req = conn.read_request()
        if req is None:
            return
        closed = conn.wait_peer_close(20)
        with self.lock:
            self.closed.append((req.headers.get("x-req-id"), closed))

    @property
    def url(self):
        return self.backend.url

    def ids(self):
        return [r.headers.get("x-req-id") for r in list(self.backend.requests)]


def timed_gets(lv, n, prefix):
    c = lv.client()
    out = []
    for i in range(n):
        rid = f"{prefix}-{i}"
        t0 = time.monotonic()
        resp = c.get(f"/h/{i}", [("X-Req-Id", rid)], timeout=30)
        out.append((rid, resp, time.monotonic() - t0))
    return out


def test_hedge_answers_in_well_under_per_try_and_closes_the_loser(h):
    hanger = Hanger(h, "hanger")
    fast = h.scripted(echo_handler(), id="fast")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {hanger.url}
          - id: fast
            url: {fast.url}
        timeouts:
          per_try: 3s
        retry:
          hedge_after: 100ms
    """)

    results = timed_gets(lv, 20, "hedge")

    for rid, resp, elapsed in results:
        assert resp.status == 200, resp
        assert elapsed < 1.5, f"{rid} took {elapsed:.2f}s with hedge_after 100ms, per_try 3s"
    times = sorted(e for _r, _resp, e in results)
    assert times[len(times) // 2] < 0.5, f"median {times[len(times) // 2]:.2f}s: {times}"
    hung = set(hanger.ids())
    assert hung, "no request went to the hanging backend first"
    for rid, _resp, _e in results:
        assert [r.headers.get("x-req-id") for r in fast.requests].count(rid) == 1, rid

    lines = [parse_combined(x) for x in lv.access_log_lines(20)]
    hedged = [ln for ln in lines if ln["retry"] == "hedged"]
    assert len(hedged) == len(hung), (
        f"{len(hung)} requests reached the hanging backend, {len(hedged)} logged as hedged")
    assert all(ln["status"] == 200 and ln["backend"] == "fast" and ln["attempts"] == 2
               for ln in hedged), hedged[:3]

    # every losing copy's connection was closed by levee
    wait_for(lambda: len(hanger.closed) >= len(hung), timeout=20,
             what="the hanging backend to see each hedged connection end")
    assert all(closed for _rid, closed in hanger.closed), hanger.closed


def test_without_hedging_a_hanging_backend_costs_a_whole_per_try(h):
    hanger = Hanger(h, "hanger")
    fast = h.scripted(echo_handler(), id="fast")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {hanger.url}
          - id: fast
            url: {fast.url}
        timeouts:
          per_try: 3s
        retry:
          hedge_after: off
    """)

    c = lv.client()
    for i in range(4):  # until one goes to the hanging backend first
        rid = f"nohedge-{i}"
        t0 = time.monotonic()
        resp = c.get(f"/h/{i}", [("X-Req-Id", rid)], timeout=30)
        elapsed = time.monotonic() - t0
        assert resp.status == 200, resp
        if rid in hanger.ids():
            break
    else:
        raise AssertionError("no request went to the hanging backend")

    assert elapsed >= 2.7, f"{rid} reached the hanging backend yet took {elapsed:.2f}s"
    lines = [parse_combined(x) for x in lv.access_log_lines(i + 1)]
    assert lines[-1]["attempts"] == 2 and lines[-1]["retry"] != "hedged", lines[-1]


def test_post_is_not_hedged(h):
    a, b = Hanger(h, "a"), Hanger(h, "b")
    lv = h.levee(f"""
        backends:
          - id: a
            url: {a.url}
          - id: b
            url: {b.url}
        timeouts:
          per_try: 2s
        retry:
          hedge_after: 100ms
    """)

    # A GET is hedged here: both backends see it well before per_try (then the
    # client gives up).
    c = lv.client()
    c.send(build_request("GET", "/g", [("X-Req-Id", "get")]))
    wait_for(lambda: "get" in a.ids() and "get" in b.ids(), timeout=1.5,
             what="the GET and its hedge at both backends")
    c.close()

    t0 = time.monotonic()
    resp = lv.client().request("POST", "/p", [("X-Req-Id", "post")], body=b"once", timeout=30)
    elapsed = time.monotonic() - t0

    assert resp.status == 504, resp
    assert error_body(resp)["error"] == "response_timeout"
    assert 1.8 <= elapsed <= 10, elapsed
    assert (a.ids() + b.ids()).count("post") == 1, "the POST was sent to two backends"
    post_line = [parse_combined(x) for x in lv.access_log_lines(2)
                 if '"POST /p ' in x][0]
    assert post_line["attempts"] == 1 and post_line["retry"] != "hedged", post_line


def test_hedged_put_sends_the_whole_body_to_both(h):
    hanger = Hanger(h, "hanger")
    fast = h.scripted(echo_handler(), id="fast")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {hanger.url}
          - id: fast
            url: {fast.url}
        timeouts:
          per_try: 3s
        retry:
          hedge_after: 100ms
    """)
    body = bytes(range(256)) * 120  # 30 KiB

    for i in range(3):
        rid = f"put-{i}"
        t0 = time.monotonic()
        resp = lv.client().request("PUT", "/put", [("X-Req-Id", rid)], body=body, timeout=30)
        elapsed = time.monotonic() - t0
        assert resp.status == 200, resp
        got = resp.json()
        assert (got["body_length"], got["body_sha256"]) == (len(body), sha256(body))
        if rid in hanger.ids():
            break
    else:
        raise AssertionError("no PUT went to the hanging backend first")

    assert elapsed < 1.5, f"hedged PUT took {elapsed:.2f}s"
    at_hanger = [r for r in hanger.backend.requests if r.headers.get("x-req-id") == rid]
    assert [(r.body_length, r.body_sha256) for r in at_hanger] == [(len(body), sha256(body))]


def test_hedges_count_against_the_retry_budget(h):
    hanger = Hanger(h, "hanger")
    fast = h.scripted(echo_handler(), id="fast")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {hanger.url}
          - id: fast
            url: {fast.url}
        timeouts:
          per_try: 1s
        retry:
          hedge_after: 100ms
          budget_percent: 0
          min_retry_concurrency: 0
    """)

    c = lv.client()
    for i in range(3):
        rid = f"nobudget-{i}"
        t0 = time.monotonic()
        resp = c.get(f"/nb/{i}", [("X-Req-Id", rid)], timeout=30)
        elapsed = time.monotonic() - t0
        if rid in hanger.ids():
            break
        assert resp.status == 200, resp
    else:
        raise AssertionError("no request went to the hanging backend first")

    # no budget: neither a hedge nor a retry; the per_try timeout is the answer
    assert resp.status == 504, resp
    assert elapsed >= 0.9, f"{elapsed:.2f}s"
    assert rid not in [r.headers.get("x-req-id") for r in fast.requests], "hedged without budget"
    ln = parse_combined(lv.access_log_lines(i + 1)[i])
    assert (ln["status"], ln["attempts"], ln["retry"]) == (504, 1, "budget"), ln


def test_hedge_overtakes_a_backend_that_never_completes_the_handshake(h):
    port = h.unresponsive_listener()
    if port is None:
        pytest.skip("this kernel completes connects to a listener with a full accept queue, "
                    "so a stuck connect cannot be provoked on loopback")
    fast = h.scripted(echo_handler(), id="fast")
    lv = h.levee(f"""
        backends:
          - id: blackhole
            url: http://127.0.0.1:{port}
          - id: fast
            url: {fast.url}
        timeouts:
          connect: 3s
          per_try: 3s
        retry:
          hedge_after: 100ms
    """)

    for i in range(4):
        t0 = time.monotonic()
        resp = lv.get(f"/bh/{i}", timeout=30)
        elapsed = time.monotonic() - t0
        assert resp.status == 200, resp
        assert elapsed < 1.5, f"request {i} took {elapsed:.2f}s; connect timeout is 3 s"
    lines = [parse_combined(x) for x in lv.access_log_lines(4)]
    assert any(ln["retry"] == "hedged" for ln in lines), lines
