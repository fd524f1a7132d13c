"""17 — HTTP/2 to clients (issue 17): ALPN h2 on a TLS listener, prior
knowledge on a cleartext listener with `http2: true`, real clients (curl,
nghttp, h2load), many streams on one connection, uploads and downloads with
flow control, per-stream timeouts and retries, access log and /metrics by
protocol, graceful GOAWAY on shutdown, and the known attacks (rapid reset,
CONTINUATION flood, HPACK bomb, PING / SETTINGS / empty-frame floods, a
window held shut), each closing the attacker's connection while levee
serves others. Backends stay HTTP/1.1 (the demo backend).

Raw frames are written with python3-h2 (hyperframe, hpack) where a real
client would not misbehave.
"""

import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import PORTS, wait_for
from tlsutil import Pki, TlsLevee, port_accepts, curl

h2 = pytest.importorskip("h2")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
import hpack  # noqa: E402
from hyperframe.frame import (  # noqa: E402
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def start(h, pki, body="", backend_args=(), plain_http2=True):
    """levee with a TLS listener (h2 by ALPN) and a cleartext one (prior
    knowledge when plain_http2), in front of one demo backend."""
    import textwrap

    d = h.demo("d1", *backend_args)
    tls_port, plain_port = PORTS.get(), PORTS.get()
    c, k = pki.a
    text = (f"listen:\n"
            f"  - address: 127.0.0.1:{tls_port}\n"
            f"    tls:\n"
            f"      certificates:\n"
            f"          - {{cert: {c}, key: {k}}}\n"
            f"  - address: 127.0.0.1:{plain_port}\n"
            f"    http2: {'true' if plain_http2 else 'false'}\n"
            f"backends:\n"
            f"  - id: d1\n"
            f"    url: {d.url}\n" + textwrap.dedent(body).lstrip("\n"))
    h._counter += 1
    lv = TlsLevee(h, text, name="levee" if h._counter == 1 else f"levee{h._counter}",
                  start=False)
    lv.tls_port = tls_port
    h._levees.append(lv)
    lv.start()
    wait_for(lambda: port_accepts("127.0.0.1", lv.admin_port), what="admin port")
    return d, lv


def metrics(lv):
    with urllib.request.urlopen(lv.admin_url("/metrics"), timeout=10) as r:
        return r.read().decode()


def metric(lv, name):
    m = re.search(rf"^{re.escape(name)} (\d+)", metrics(lv), re.MULTILINE)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------
# a raw HTTP/2 client (python3-h2 for the framing it gets right)


class RawH2:
    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def pump(self, timeout=10, until=None):
        """Reads and processes frames until `until(self)` is true, the
        connection closes, or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until and until(self):
                return True
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                return until(self) if until else False
            if not data:
                self.closed = True
                return until(self) if until else False
            try:
                self.events += self.conn.receive_data(data)
            except Exception:
                self.closed = True
                return until(self) if until else False
            self.flush()
        return until(self) if until else False

    def request(self, path, method="GET", body=None, headers=()):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", "localhost"), *headers]
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    def response(self, sid, timeout=30):
        """(status, headers, body) of stream sid once it ended."""
        def done(c):
            return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                       and e.stream_id == sid for e in c.events)
        assert self.pump(timeout, done), f"stream {sid} did not end"
        status, hdrs, body = None, [], b""
        for e in self.events:
            if getattr(e, "stream_id", None) != sid:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                hdrs = list(e.headers)
                status = int(dict(hdrs)[":status"])
            elif isinstance(e, h2.events.DataReceived):
                body += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, sid)
            elif isinstance(e, h2.events.StreamReset):
                status = -1
        self.flush()
        return status, hdrs, body

    def goaway(self):
        return [e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)]

    def close(self):
        self.sock.close()


def closed_by_levee(sock, timeout=15):
    """True once levee closed the connection (EOF or reset), reading and
    dropping whatever it sends first (a GOAWAY)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True
    return False


def still_serves(lv):
    """A fresh HTTP/2 connection gets an answer: levee is up and well."""
    c = RawH2(lv.port)
    sid = c.request("/echo")
    status, _, _ = c.response(sid)
    c.close()
    return status == 200


# --------------------------------------------------------------------------
# negotiation and real clients


def test_curl_h2_over_tls_and_prior_knowledge(h, pki):
    d, lv = start(h, pki)
    ca = pki.ca
    r = curl(["--http2", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
              f"https://127.0.0.1:{lv.tls_port}/echo"])
    assert r.stdout == "2 200", r
    r = curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w",
              "%{http_version} %{http_code}", f"http://127.0.0.1:{lv.port}/bytes/100000"])
    assert r.stdout == "2 200", r
    # HTTP/1.1 still works on both listeners.
    r = curl(["--http1.1", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
              f"https://127.0.0.1:{lv.tls_port}/echo"])
    assert r.stdout == "1.1 200", r
    r = curl(["-o", "/dev/null", "-w", "%{http_version} %{http_code}",
              f"http://127.0.0.1:{lv.port}/echo"])
    assert r.stdout == "1.1 200", r
