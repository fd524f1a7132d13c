"""21 — deadlines across retries: `per_try` bounds each attempt (attempt start to
response head), `backend` bounds all attempts and backoff together, and a
connect timeout is retried onto another backend.

Timing bounds are wide (the machine is small, shared and noisy; levee runs
under ASan): a bound of N seconds must hold from 0.9 N, and the upper limits
leave seconds of slack, yet each is far from what levee would do without the
feature.
"""

import time

import pytest

from harness import echo_handler, error_body, parse_combined


def hang_handler():
    def hang(conn):
        if conn.read_request() is not None:
            conn.hang(30)

    return hang


def test_per_try_timeout_is_retried_up_to_max_attempts(h):
    b = h.scripted(hang_handler(), id="hanger")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {b.url}
        timeouts:
          per_try: 1s
        retry:
          max_attempts: 3
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/slow", [("X-Req-Id", "pt")], timeout=30)
    elapsed = time.monotonic() - t0

    assert resp.status == 504, resp
    assert error_body(resp)["error"] == "response_timeout"
    # three tries of 1 s each, plus at most 2 backoffs of < 250 ms
    assert 2.7 <= elapsed <= 12, f"504 after {elapsed:.2f}s; expected about 3 x per_try"
    assert len(b.requests) == 3, f"{len(b.requests)} attempts reached the backend, expected 3"
    ln = parse_combined(lv.access_log_lines(1)[0])
    assert (ln["status"], ln["attempts"], ln["reason"], ln["retry"]) == (
        504, 3, "response_timeout", "attempts_exhausted"), ln


def test_backend_deadline_caps_all_attempts(h):
    b1 = h.scripted(hang_handler(), id="h1")
    b2 = h.scripted(hang_handler(), id="h2")
    lv = h.levee(f"""
        backends:
          - id: h1
            url: {b1.url}
          - id: h2
            url: {b2.url}
        timeouts:
          per_try: 1s
          backend: 1500ms
        retry:
          max_attempts: 3
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/slow", timeout=30)
    elapsed = time.monotonic() - t0

    assert resp.status == 504, resp
    assert error_body(resp)["error"] in ("response_timeout", "deadline_exceeded"), resp
    # without the deadline this takes 3 s (3 x per_try)
    assert 1.35 <= elapsed <= 4, f"504 after {elapsed:.2f}s with backend: 1500ms"
    tries = len(b1.requests) + len(b2.requests)
    assert tries == 2, f"{tries} attempts: the second one is cut by the deadline, no third"
    ln = parse_combined(lv.access_log_lines(1)[0])
    assert (ln["status"], ln["attempts"]) == (504, 2), ln
    assert ln["retry"] == "deadline", ln


def test_backend_deadline_shorter_than_per_try_cuts_the_first_attempt(h):
    b = h.scripted(hang_handler(), id="hanger")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {b.url}
        timeouts:
          per_try: 10s
          backend: 1s
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/slow", timeout=30)
    elapsed = time.monotonic() - t0

    assert resp.status == 504, resp
    assert 0.9 <= elapsed <= 4, f"504 after {elapsed:.2f}s with backend: 1s, per_try: 10s"
    assert len(b.requests) == 1
    ln = parse_combined(lv.access_log_lines(1)[0])
    assert (ln["status"], ln["attempts"], ln["retry"]) == (504, 1, "deadline"), ln


def test_connect_timeout_is_retried_onto_a_healthy_backend(h):
    port = h.unresponsive_listener()
    if port is None:
        pytest.skip("this kernel completes connects to a listener with a full accept queue, "
                    "so a connect timeout cannot be provoked on loopback")
    good = h.scripted(echo_handler(), id="good")
    lv = h.levee(f"""
        backends:
          - id: blackhole
            url: http://127.0.0.1:{port}
          - id: good
            url: {good.url}
        timeouts:
          connect: 300ms
          per_try: 5s
    """)

    slow = []
    for k in range(4):
        t0 = time.monotonic()
        resp = lv.get(f"/ct/{k}", timeout=20)
        elapsed = time.monotonic() - t0
        assert resp.status == 200, resp
        if elapsed >= 0.25:
            slow.append(elapsed)

    lines = [parse_combined(x) for x in lv.access_log_lines(4)]
    retried = [ln for ln in lines if ln["attempts"] == 2]
    assert retried, f"no request went to the unresponsive backend first: {lines}"
    assert all(ln["backend"] == "good" and ln["status"] == 200 for ln in lines), lines
    # a retried request waited out the connect timeout (300 ms), not per_try (5 s)
    assert slow and max(slow) < 4, slow
    assert len(good.requests) == 4


def test_a_slow_upload_is_not_a_slow_backend(h):
    """per_try and backend count from the end of the request: a client that
    takes longer than both to send its body still gets the backend's answer,
    and the backend's breaker hears nothing against it (found by the soak:
    slow uploaders opened every breaker and levee answered 503 to all)."""
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        timeouts:
          per_try: 1s
          backend: 2s
        circuit_breaker:
          failure_threshold: 1
    """)
    c = lv.client(timeout=30)
    body = b"x" * 3000
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n")
    t0 = time.monotonic()
    for i in range(0, len(body), 300):  # 10 pieces over ~3.5 s: longer than both timeouts
        c.send(body[i:i + 300])
        time.sleep(0.35)
    assert time.monotonic() - t0 > 3, "the upload must outlast per_try and backend"
    resp = c.read_response(timeout=30)
    assert resp.status == 200, resp
    [req] = b.wait_requests(1)
    assert req.body_length == 3000
    # the breaker (threshold 1) heard no failure: a second request goes through
    assert lv.client().get("/after").status == 200
    assert parse_combined(lv.access_log_lines(2)[0])["attempts"] == 1
