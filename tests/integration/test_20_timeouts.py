"""20 — timeouts: client header (total, not per read), client body (gap between
reads), backend response (per try), backend connect, keep-alive idle.

Timing bounds are wide on purpose (the machine is small, shared and noisy, and
levee runs under ASan): a 1 s timeout must fire after >= 0.9 s and within 8 s.
"""

import select
import time

import pytest

from harness import build_request, echo_handler, error_body, serve, sha256


def test_slowloris_headers_get_408_after_the_total_header_time(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        timeouts:
          client_header: 1s
    """)

    t0 = time.monotonic()
    c = lv.client()
    c.send(b"GET /slow HTTP/1.1\r\nHost: levee.test\r\n")
    trickle = b"X-Slow: " + b"a" * 100 + b"\r\n"
    i = 0
    # one byte every 200 ms: each read is quick, only the total is slow
    while not select.select([c.sock], [], [], 0.2)[0]:
        assert time.monotonic() - t0 < 10, "no answer 10 s into a trickled request head"
        c.try_send(trickle[i % len(trickle):i % len(trickle) + 1])
        i += 1
    resp = c.read_response(timeout=10)

    elapsed = resp.received_at - t0
    assert resp.status == 408, resp
    assert error_body(resp)["error"] == "client_header_timeout"
    assert 0.9 <= elapsed <= 8, f"408 after {elapsed:.2f}s for client_header: 1s"
    assert c.wait_closed(10) in ("eof", "reset")  # we may have sent a byte as it closed
    assert b.requests == []


def test_stalled_request_body_gets_408(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        timeouts:
          client_body: 1s
    """)

    t0 = time.monotonic()
    c = lv.client()
    c.send(build_request("POST", "/upload", [("Content-Length", "100")]) + b"0123456789")
    resp = c.read_response(timeout=10)

    elapsed = resp.received_at - t0
    assert resp.status == 408, resp
    assert error_body(resp)["error"] == "client_body_timeout"
    assert 0.9 <= elapsed <= 8, f"408 after {elapsed:.2f}s for client_body: 1s"
    assert c.wait_closed(10) == "eof"


def test_slow_but_steady_request_body_is_accepted(h):
    """client_body bounds the gap between two reads, not the whole body."""
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        timeouts:
          client_body: 2s
    """)
    body = b"0123456789"
    c = lv.client()

    c.send(build_request("POST", "/upload", [("Content-Length", str(len(body)))]))
    for i in range(len(body)):  # 10 bytes, 250 ms apart: 2.5 s in all
        time.sleep(0.25)
        c.send(body[i:i + 1])
    resp = c.read_response(timeout=10)

    assert resp.status == 200, resp
    assert resp.json()["body_sha256"] == sha256(body)


def test_backend_that_never_answers_gets_504_response_timeout(h):
    def hang(conn):
        conn.read_request()
        conn.hang()

    b = h.scripted(hang, id="hanger")
    lv = h.levee(f"""
        backends:
          - id: hanger
            url: {b.url}
        timeouts:
          per_try: 1s
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/never")

    elapsed = resp.received_at - t0
    assert resp.status == 504, resp
    assert error_body(resp)["error"] == "response_timeout"
    assert 0.9 <= elapsed <= 8, f"504 after {elapsed:.2f}s for per_try: 1s"
    assert len(b.requests) >= 1


def test_backend_that_never_completes_the_handshake_gets_504_connect_timeout(h):
    port = h.unresponsive_listener()
    if port is None:
        pytest.skip("this kernel completes connects to a listener with a full accept queue, "
                    "so a connect timeout cannot be provoked on loopback")
    lv = h.levee(f"""
        backends:
          - id: blackhole
            url: http://127.0.0.1:{port}
        timeouts:
          connect: 1s
    """)

    t0 = time.monotonic()
    resp = lv.client().get("/")

    elapsed = resp.received_at - t0
    assert resp.status == 504, resp
    assert error_body(resp)["error"] == "connect_timeout"
    assert 0.9 <= elapsed <= 8, f"504 after {elapsed:.2f}s for connect: 1s"


def test_idle_keepalive_connection_is_closed_after_the_idle_timeout(h):
    b = h.scripted(serve(lambda conn, req: conn.respond(200, b"ok")), id="ok")
    lv = h.levee(f"""
        backends:
          - id: ok
            url: {b.url}
        timeouts:
          idle: 2s
    """)
    c = lv.client()

    resp = c.get("/")
    assert resp.status == 200
    how = c.wait_closed(15)

    idle = time.monotonic() - resp.received_at
    assert how == "eof", how
    assert 1.2 <= idle <= 10, f"idle connection closed after {idle:.2f}s for idle: 2s"


def test_idle_timer_restarts_with_each_request(h):
    b = h.scripted(serve(lambda conn, req: conn.respond(200, b"ok")), id="ok")
    lv = h.levee(f"""
        backends:
          - id: ok
            url: {b.url}
        timeouts:
          idle: 3s
    """)
    c = lv.client()

    for i in range(8):  # 8 requests 0.5 s apart: 4 s on one connection
        resp = c.get(f"/{i}")
        assert resp.status == 200, f"request {i} on a connection that should stay open"
        time.sleep(0.5)
