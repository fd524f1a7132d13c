"""95 — log flooding (issue 11): an error a client or a backend can cause over
and over is counted exactly in the metrics but logged a few times, each later
line saying how many were suppressed. Before, every failed client TLS
handshake and every failed TLS connection to a backend wrote a line."""

import re
import socket
import time

import pytest

from harness import http_get, wait_for
from scripted import serve
from tlsutil import Pki, closed_at, handshakes, start_levee, tls_backend


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def lines_with(lv, text):
    return [ln for ln in lv.stderr().splitlines() if text in ln]


def suppressed(lines):
    """The suppressed lines that the written ones report."""
    return sum(int(m.group(1)) for ln in lines
               if (m := re.search(r"\((\d+) similar lines? suppressed\)", ln)))


def plain_http_on_tls_port(lv):
    """One failed handshake: a plain HTTP request on the TLS port (dropped at once)."""
    s = socket.create_connection(("127.0.0.1", lv.tls_port))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        closed_at(s, time.monotonic() + 20)
    finally:
        s.close()


def test_failed_client_handshakes_are_counted_and_logged_once_a_second(h, pki):
    d = h.demo("d1")
    lv = start_levee(h, [pki.a], f"""
        backends:
          - id: d1
            url: {d.url}
    """, handshake_timeout="60s")
    n = 60
    t0 = time.monotonic()
    for _ in range(n):
        plain_http_on_tls_port(lv)
    wait_for(lambda: handshakes(lv, "failure") == n, what=f"{n} failed handshakes counted")

    # one more failure at a time until a line reports those suppressed
    def another():
        plain_http_on_tls_port(lv)
        return suppressed(lines_with(lv, "TLS handshake failed")) > 0

    wait_for(another, 30, 0.1, "a handshake failure line with a suppressed count")
    elapsed = time.monotonic() - t0
    lines = lines_with(lv, "TLS handshake failed")
    assert 2 <= len(lines) <= elapsed + 2, (len(lines), elapsed)
    assert len(lines) + suppressed(lines) >= n + 1, "every failure written or counted"
    assert len(lines) + suppressed(lines) <= handshakes(lv, "failure")


def test_a_backend_failing_every_tls_handshake_is_logged_a_few_times(h, pki):
    b = tls_backend(h, serve(lambda conn, req: conn.respond(200, b"no")), pki.wrong_backend,
                    id="forged", host_in_url="localhost")
    lv = start_levee(h, [pki.a], f"""
        backends:
          - id: forged
            url: {b.url}
            tls: {{ca_file: {pki.ca}}}
        circuit_breaker:
          enabled: false
        retry:
          max_attempts: 1
    """)
    n = 40
    t0 = time.monotonic()
    for i in range(n):
        resp = http_get(lv.port, f"/r{i}")
        assert resp.status == 502, resp
    elapsed = time.monotonic() - t0
    lines = lines_with(lv, "certificate verify failed")
    # a burst of 10 for a backend, then one a second
    assert 1 <= len(lines) <= 10 + elapsed + 1, (len(lines), elapsed)
    assert all("forged" in ln for ln in lines)
