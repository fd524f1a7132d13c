"""95 — graceful shutdown: on SIGTERM levee stops accepting, lets in-flight
requests finish within timeouts.shutdown, closes idle connections and exits 0
(the harness checks the exit code and the sanitizers at teardown)."""

import signal
import threading
import time

from harness import connect_refused, wait_for


def slow_backend(h, seconds):
    """Answers each request `seconds` after it arrived (sooner if stopped)."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.backend.stopping.wait(seconds)
            conn.respond(200, b"slow " + req.path.encode())

    return h.scripted(handler, id="slow")


def in_flight(lv, target, result):
    """Start a request in a thread; its response (or exception) lands in result."""
    c = lv.client(timeout=30)

    def run():
        try:
            result["resp"] = c.get(target, timeout=30)
            result["done_at"] = time.monotonic()
            result["after"] = c.wait_closed(15)
        except Exception as e:  # noqa: BLE001 - inspected by the test
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_sigterm_lets_the_in_flight_request_finish(h):
    b = slow_backend(h, 3)
    lv = h.levee(f"""
        backends:
          - id: slow
            url: {b.url}
        timeouts:
          shutdown: 10s
    """)
    result = {}
    t = in_flight(lv, "/delay/3s", result)
    b.wait_requests(1)

    sent = time.monotonic()
    lv.signal(signal.SIGTERM)

    wait_for(lambda: connect_refused(lv.host, lv.port), timeout=10, interval=0.05,
             what="new connections to be refused after SIGTERM")
    refused_after = time.monotonic() - sent
    still_in_flight = "resp" not in result and "error" not in result
    rc = lv.wait_exit(15)
    exited = time.monotonic() - sent
    t.join(20)

    assert "error" not in result, result
    resp = result["resp"]
    assert resp.status == 200 and resp.body == b"slow /delay/3s" and resp.complete
    assert still_in_flight, (
        f"new connections were refused only {refused_after:.1f}s after SIGTERM, once the "
        "in-flight request had ended: levee must stop accepting at once")
    assert result["after"] == "eof", "levee closes the kept-alive client connection once its request is done"
    assert rc == 0, f"levee exit code {rc} after SIGTERM"
    assert exited <= 9, f"levee took {exited:.1f}s to exit; its only request ended after ~3 s"


def test_grace_period_expiry_ends_levee(h):
    b = slow_backend(h, 10)
    lv = h.levee(f"""
        backends:
          - id: slow
            url: {b.url}
        timeouts:
          shutdown: 1s
    """)
    result = {}
    t = in_flight(lv, "/delay/10s", result)
    b.wait_requests(1)

    sent = time.monotonic()
    lv.signal(signal.SIGTERM)
    rc = lv.wait_exit(15)
    exited = time.monotonic() - sent
    t.join(20)

    assert rc is not None, "levee still runs 15 s after SIGTERM with shutdown: 1s"
    assert 0.9 <= exited <= 6, f"levee exited {exited:.1f}s after SIGTERM with shutdown: 1s"
    assert rc == 0
    resp = result.get("resp")
    assert resp is None or not resp.complete or resp.status != 200, (
        "the 10 s request cannot have completed normally")


def test_sigint_stops_an_idle_levee(h):
    b = slow_backend(h, 0)
    lv = h.levee(f"""
        backends:
          - id: slow
            url: {b.url}
    """)
    assert lv.get("/x").status == 200
    idle = lv.client()  # an idle keep-alive connection does not hold levee up

    lv.signal(signal.SIGINT)
    rc = lv.wait_exit(8)

    assert rc == 0, f"exit code {rc} (None: still running 8 s after SIGINT)"
    assert idle.wait_closed(5) in ("eof", "reset")
