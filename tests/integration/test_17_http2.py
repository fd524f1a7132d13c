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


def start(h, pki, body="", backend_args=(), plain_http2=True, tls_http2=None, dead_backend=None):
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
            + (f"    http2: {'true' if tls_http2 else 'false'}\n" if tls_http2 is not None else "")
            + f"  - address: 127.0.0.1:{plain_port}\n"
            f"    http2: {'true' if plain_http2 else 'false'}\n"
            f"backends:\n"
            f"  - id: d1\n"
            f"    url: {d.url}\n"
            + (f"  - id: dead\n    url: http://127.0.0.1:{dead_backend}\n" if dead_backend else "")
            + textwrap.dedent(body).lstrip("\n"))
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
    def __init__(self, port, settings=None, validate=True, send_now=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        if send_now:  # else the preface goes with the first flush()
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
                new = self.conn.receive_data(data)
            except Exception:
                self.closed = True
                return until(self) if until else False
            for e in new:  # the window reopens as the test reads
                if isinstance(e, h2.events.DataReceived) and e.stream_id in self.conn.streams:
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            self.events += new
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


def fnv1a64(data):
    x = 0xcbf29ce484222325
    for b in data:
        x = ((x ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{x:016x}"


def test_nghttp_and_h2load_many_streams(h, pki):
    if not shutil.which("h2load") or not shutil.which("nghttp"):
        pytest.skip("nghttp2-client is not installed")
    d, lv = start(h, pki)
    r = subprocess.run(["nghttp", "-n", "-s", f"http://127.0.0.1:{lv.port}/echo"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    # 2 connections, 20 streams each at once, 400 requests over TLS (ALPN h2).
    r = subprocess.run(["h2load", "-n", "400", "-c", "2", "-m", "20",
                        f"https://127.0.0.1:{lv.tls_port}/bytes/1000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r
    assert "400 succeeded" in r.stdout, r.stdout
    assert "Application protocol: h2" in r.stdout, r.stdout
    assert metric(lv, "levee_http2_connections_total") >= 3


def test_many_concurrent_streams_one_connection_slow_backend(h, pki):
    d, lv = start(h, pki)
    c = RawH2(lv.port)
    sids = [c.request(f"/delay/300ms?i={i}") for i in range(60)]
    t0 = time.monotonic()
    results = [c.response(s) for s in sids]
    elapsed = time.monotonic() - t0
    assert [st for st, _, _ in results] == [200] * 60
    # One connection carried them all, concurrently: far less than 60 x 0.3 s.
    assert elapsed < 12, elapsed
    assert metric(lv, "levee_http2_connections_total") == 1
    assert d.stats()["requests"] >= 60
    c.close()


def test_upload_body_streams_with_flow_control(h, pki, tmp_path):
    d, lv = start(h, pki)
    body = bytes((i * 7 + 3) & 0xFF for i in range(3 * 1024 * 1024 + 17))
    f = tmp_path / "up.bin"
    f.write_bytes(body)
    for url, opt in ((f"http://127.0.0.1:{lv.port}/upload", "--http2-prior-knowledge"),
                     (f"https://127.0.0.1:{lv.tls_port}/upload", "--http2")):
        r = curl([opt, "--cacert", pki.ca, "--data-binary", f"@{f}", url])
        assert r.returncode == 0, r
        import json
        j = json.loads(r.stdout)
        assert j["body_length"] == len(body)
        assert j["body_fnv1a64"] == fnv1a64(body)
    # A body without content-length (chunked to the backend) from python3-h2.
    c = RawH2(lv.port)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "POST"), (":path", "/upload"), (":scheme", "http"),
                              (":authority", "localhost")])
    c.flush()
    sent = 0
    piece = body[:200000]
    while sent < len(piece):
        def room(cc):
            return cc.conn.local_flow_control_window(sid) > 0
        assert c.pump(30, room), f"no window from levee after {sent} bytes"
        n = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size,
                len(piece) - sent)
        c.conn.send_data(sid, piece[sent:sent + n])
        c.flush()
        sent += n
    c.conn.end_stream(sid)
    c.flush()
    status, _, out = c.response(sid)
    import json
    assert status == 200
    assert json.loads(out)["body_length"] == len(piece)
    c.close()


def test_prior_knowledge_preface_with_more_bytes_behind_it(h, pki):
    """The preface and far more than one read buffer (32 KiB) in one write:
    libuv reads again within the callback that saw the preface, and those
    bytes must reach nghttp2 after the preface (they once went first: a
    PROTOCOL_ERROR GOAWAY, "bad client magic", logged at debug only)."""
    d, lv = start(h, pki)
    n = 30
    for attempt in range(5):
        c = RawH2(lv.port, send_now=False)
        sids = []
        for i in range(n):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":path", f"/echo?i={i}"),
                                      (":scheme", "http"), (":authority", "localhost"),
                                      ("x-pad", f"{attempt}-{i}-" + "p" * 6000)],
                                end_stream=True)
            sids.append(sid)
        data = c.conn.data_to_send()
        assert len(data) > 4 * 32 * 1024
        c.sock.sendall(data)  # one write: preface, SETTINGS, 30 requests
        def ended(cc):
            return {e.stream_id for e in cc.events
                    if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))} >= set(sids)
        assert c.pump(30, ended), f"connection {attempt}: {c.goaway()} closed={c.closed}"
        assert [c.response(sid)[0] for sid in sids] == [200] * n
        assert not c.goaway()
        c.close()


def test_large_download_flow_control(h, pki):
    d, lv = start(h, pki)
    n = 30 * 1000 * 1000
    r = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(pki.ca), "-o", "/dev/null",
                        "-w", "%{size_download} %{http_version}",
                        f"https://127.0.0.1:{lv.tls_port}/bytes/{n}"],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout == f"{n} 2", r
    # A client with a small window that reads slowly still gets all of it.
    c = RawH2(lv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384})
    sid = c.request("/bytes/2000000")
    status, hdrs, body = c.response(sid, timeout=60)
    assert status == 200 and len(body) == 2000000
    assert dict(hdrs)["content-length"] == "2000000"
    c.close()


def test_timeouts_and_retries_apply_per_stream(h, pki):
    d, lv = start(h, pki, """
        timeouts:
          per_try: 400ms
          backend: 1s
        retry:
          max_attempts: 1
    """)
    c = RawH2(lv.port)
    slow = c.request("/delay/3s")
    fast = [c.request("/echo") for _ in range(5)]
    for s in fast:
        assert c.response(s)[0] == 200
    status, _, _ = c.response(slow)
    assert status == 504, status
    # The connection goes on after a stream's timeout.
    assert c.response(c.request("/echo"))[0] == 200
    c.close()


def test_retries_apply_per_stream(h, pki):
    from harness import closed_port
    port, holder = closed_port()
    d, lv = start(h, pki, """
        load_balancing: round_robin
        retry:
          max_attempts: 3
          budget_percent: 100
        circuit_breaker:
          enabled: false
    """, dead_backend=port)
    c = RawH2(lv.port)
    sids = [c.request(f"/echo?i={i}") for i in range(20)]
    assert [c.response(s)[0] for s in sids] == [200] * 20
    c.close()
    # Some streams went to the dead backend first and were retried on d1.
    text = metrics(lv)
    m = re.search(r"^levee_retries_total (\d+)", text, re.MULTILINE)
    assert m and int(m.group(1)) >= 1, text
    assert d.stats()["requests"] == 20
    holder.close()


def test_headers_semantics(h, pki):
    import json
    d, lv = start(h, pki)
    c = RawH2(lv.port)
    sid = c.request("/echo?x=1", headers=[("cookie", "a=1"), ("cookie", "b=2"),
                                          ("te", "trailers"), ("x-thing", "v")])
    status, hdrs, body = c.response(sid)
    assert status == 200
    j = json.loads(body)
    seen = {k.lower(): v for k, v in j["headers"]}
    assert seen["host"] == "localhost"       # :authority became Host
    assert seen["cookie"] == "a=1; b=2"      # crumbs joined for HTTP/1.1
    assert "te" not in seen                  # hop-by-hop
    assert seen["x-thing"] == "v"
    assert j["path"] == "/echo?x=1" and j["method"] == "GET"
    names = [k for k, _ in hdrs]
    assert all(k == k.lower() for k in names)
    assert not {"connection", "keep-alive", "transfer-encoding"} & set(names)
    assert dict(hdrs).get("x-request-id")
    c.close()
    # :authority and a different Host: refused.
    c = RawH2(lv.port, validate=False)
    sid = c.request("/echo", headers=[("host", "other.example")])
    assert c.response(sid)[0] == 400
    # A connection-specific field is a malformed request (stream reset).
    sid = c.request("/echo", headers=[("connection", "close")])
    assert c.response(sid)[0] in (-1, 400)
    sid = c.request("/echo", headers=[("te", "gzip")])
    assert c.response(sid)[0] in (-1, 400)
    assert d.stats()["requests"] == 1  # none of them reached the backend
    assert still_serves(lv)
    c.close()


def raw_headers(sid, headers, c=None, end_stream=True):
    enc = c.conn.encoder if c else hpack.Encoder()
    f = HeadersFrame(sid)
    f.data = enc.encode(headers)
    f.flags.add("END_HEADERS")
    if end_stream:
        f.flags.add("END_STREAM")
    return f.serialize()


def test_access_log_and_metrics_by_protocol(h, pki):
    d, lv = start(h, pki)
    c = RawH2(lv.port)
    assert c.response(c.request("/echo"))[0] == 200
    c.close()
    line = lv.access_log_lines(1)[-1]
    assert "HTTP/2.0" in line, line
    r = curl(["-o", "/dev/null", f"http://127.0.0.1:{lv.port}/echo"])
    assert r.returncode == 0
    wait_for(lambda: 'levee_requests_by_protocol_total{protocol="HTTP/1.x"} 1' in metrics(lv),
             what="one HTTP/1.x request counted")
    assert 'levee_requests_by_protocol_total{protocol="HTTP/2.0"} 1' in metrics(lv)


def test_cleartext_h2_off_by_default_and_tls_h2_can_be_off(h, pki):
    d, lv = start(h, pki, plain_http2=False, tls_http2=False)
    r = curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}",
              f"http://127.0.0.1:{lv.port}/echo"])
    assert r.stdout != "200", r
    r = curl(["--http2", "--cacert", pki.ca, "-o", "/dev/null", "-w",
              "%{http_version} %{http_code}", f"https://127.0.0.1:{lv.tls_port}/echo"])
    assert r.stdout == "1.1 200", r
    assert metric(lv, "levee_http2_connections_total") == 0


def test_graceful_goaway_on_shutdown(h, pki):
    if not shutil.which("nghttp"):
        pytest.skip("nghttp2-client is not installed")
    d, lv = start(h, pki)
    # nghttp (python3-h2 drops frames after a GOAWAY): a stream in flight when
    # levee is told to stop gets its whole answer after the GOAWAY.
    p = subprocess.Popen(["nghttp", "-v", f"http://127.0.0.1:{lv.port}/delay/1500ms"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: d.stats()["requests"] >= 1, what="the request at the backend")
    lv.signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    goaway = out.find("recv GOAWAY")
    assert goaway >= 0, out
    assert "error_code=NO_ERROR" in out[goaway:], out
    status = out.find(":status: 200")
    assert status > goaway, out          # the answer came after the GOAWAY
    assert re.search(r"recv DATA frame <length=3, flags=0x01", out), out
    assert lv.wait_exit(20) == 0


# --------------------------------------------------------------------------
# attacks: each closes the attacker's connection; levee stays up


def attacker(lv, settings=None):
    c = RawH2(lv.port, settings=settings)
    c.pump(1, lambda cc: False)  # the server's SETTINGS
    return c


def test_rapid_reset_closes_connection(h, pki):
    d, lv = start(h, pki)
    c = attacker(lv)
    enc = hpack.Encoder()
    out = b""
    sid = 1
    for _ in range(3000):
        out += raw_headers(sid, [(":method", "GET"), (":path", "/delay/1s"),
                                 (":scheme", "http"), (":authority", "x")], None) \
            if False else b""
        f = HeadersFrame(sid)
        f.data = enc.encode([(":method", "GET"), (":path", "/delay/1s"), (":scheme", "http"),
                             (":authority", "x")])
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        out += f.serialize() + RstStreamFrame(sid, error_code=8).serialize()
        sid += 2
    try:
        c.send_raw(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_levee(c.sock)
    assert metric(lv, "levee_http2_abuse_closed_total") >= 1
    assert still_serves(lv)
    # Far fewer requests reached the backend than the attacker started.
    assert d.stats()["requests"] < 1000


def test_continuation_flood_closes_connection(h, pki):
    d, lv = start(h, pki)
    c = attacker(lv)
    enc = hpack.Encoder()
    f = HeadersFrame(1)
    f.data = enc.encode([(":method", "GET"), (":path", "/"), (":scheme", "http"),
                         (":authority", "x")])
    out = f.serialize()
    for i in range(5000):
        cf = ContinuationFrame(1)
        cf.data = enc.encode([(f"x-h{i}", "v" * 20)])
        out += cf.serialize()
    try:
        c.send_raw(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_levee(c.sock)
    assert still_serves(lv)


def hpack_int(value, prefix_bits, first_byte_flags):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_hpack_bomb_closes_connection(h, pki):
    d, lv = start(h, pki)
    c = attacker(lv)
    authority = b"\x01" + hpack_int(1, 7, 0) + b"x"  # :authority, not indexed
    # Stream 1 puts a 4000-byte field in the dynamic table (index 62)...
    block1 = (b"\x82\x86\x84" + authority + b"\x40" + hpack_int(6, 7, 0) + b"x-bomb"
              + hpack_int(4000, 7, 0) + b"a" * 4000)
    f1 = HeadersFrame(1)
    f1.data = block1
    f1.flags.add("END_HEADERS")
    f1.flags.add("END_STREAM")
    # ... stream 3 refers to it 3000 times: 12 MB decoded from 3 KB.
    f3 = HeadersFrame(3)
    f3.data = b"\x82\x86\x84" + authority + b"\xbe" * 3000
    f3.flags.add("END_HEADERS")
    f3.flags.add("END_STREAM")
    try:
        c.send_raw(f1.serialize() + f3.serialize())
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_levee(c.sock)
    assert metric(lv, "levee_http2_abuse_closed_total") >= 1
    assert still_serves(lv)


def test_header_list_over_limit_is_431(h, pki):
    d, lv = start(h, pki, """
        limits:
          max_header_size: 4KiB
    """)
    c = RawH2(lv.port)
    sid = c.request("/echo", headers=[("x-big", "b" * 6000)])
    assert c.response(sid)[0] == 431
    assert c.response(c.request("/echo"))[0] == 200  # the connection goes on
    c.close()


@pytest.mark.parametrize("kind", ["ping", "settings", "empty_data"])
def test_control_frame_floods_close_connection(h, pki, kind):
    d, lv = start(h, pki)
    c = attacker(lv)
    out = b""
    if kind == "empty_data":
        f = HeadersFrame(1)
        f.data = hpack.Encoder().encode([(":method", "POST"), (":path", "/upload"),
                                         (":scheme", "http"), (":authority", "x")])
        f.flags.add("END_HEADERS")
        out += f.serialize()
    for i in range(5000):
        if kind == "ping":
            out += PingFrame(0, opaque_data=struct.pack(">Q", i)).serialize()
        elif kind == "settings":
            out += SettingsFrame(0).serialize()
        else:
            out += DataFrame(1, data=b"").serialize()
    try:
        c.send_raw(out)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_by_levee(c.sock)
    assert metric(lv, "levee_http2_abuse_closed_total") >= 1
    assert still_serves(lv)


def test_zero_window_held_forever_times_out(h, pki):
    d, lv = start(h, pki, """
        timeouts:
          idle: 2s
    """)
    c = RawH2(lv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.request("/bytes/1000000")
    t0 = time.monotonic()
    assert closed_by_levee(c.sock, timeout=20)
    assert time.monotonic() - t0 >= 1.5
    assert metric(lv, "levee_http2_abuse_closed_total") >= 1
    assert still_serves(lv)


def test_idle_connection_gets_goaway(h, pki):
    d, lv = start(h, pki, """
        http2:
          idle_timeout: 1s
    """)
    c = RawH2(lv.port)
    assert c.response(c.request("/echo"))[0] == 200
    assert c.pump(15, lambda cc: cc.goaway() and cc.closed)
    assert c.goaway()[0].error_code == 0
