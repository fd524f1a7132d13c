"""16 — TLS: HTTPS listeners (SNI, default certificate, ALPN, keep-alive, big
bodies, X-Forwarded-Proto, minimum versions, handshake timeout, garbage,
certificate reload on SIGHUP, wss), and backends over TLS (verification with
ca_file and server_name, wrong CA, insecure_skip_verify, client certificates,
pooling, session resumption, health checks).

Every certificate is made at test time (tlsutil.Pki, session-scoped, in
pytest's tmp dir). Listeners are a TLS one and a plain one (tlsutil.start_levee);
clients are curl, Python's ssl (tlsutil.TlsClient) and python3-websockets.
"""

import asyncio
import json
import re
import signal
import socket
import ssl
import threading
import time
import warnings

import pytest

from harness import error_body, pattern_bytes, serve, sha256, wait_for
from tlsutil import (
    Pki,
    cert_serial,
    client_context,
    client_hello,
    closed_at,
    curl,
    handshakes,
    start_levee,
    subject_cn,
    tls_backend,
    tls_client,
    ws_backend,
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def demo_levee(h, pki, certs=None, **listen_kw):
    """A demo backend behind levee (TLS listener with a.test then b.test)."""
    d = h.demo("d1")
    lv = start_levee(h, certs or [pki.a, pki.b], f"""
        backends:
          - id: d1
            url: {d.url}
    """, **listen_kw)
    return d, lv


def echo_headers(resp, name):
    """The values of header `name` the demo backend's /echo saw."""
    assert resp.status == 200, resp
    return [v for k, v in json.loads(resp.body)["headers"] if k.lower() == name.lower()]


def serial_of(client):
    return int(client.peer_cert["serialNumber"], 16)


# --------------------------------------------------------------------------
# listeners


def test_sni_picks_the_certificate_and_the_first_one_is_the_default(h, pki):
    _d, lv = demo_levee(h, pki, [pki.a, pki.b])

    for sni, expected in [("a.test", "a.test"), ("b.test", "b.test"), (None, "a.test"),
                          ("unknown.test", "a.test")]:
        c = tls_client(h, lv.tls_port, client_context(pki.ca), sni)
        assert subject_cn(c.peer_cert) == expected, f"SNI {sni!r}"
        # ALPN: offered http/1.1, levee speaks it and says so (issue 17: a
        # client offering h2 gets h2, test_17_http2.py).
        assert c.alpn == "http/1.1", f"SNI {sni!r}"
        resp = c.get("/echo", [("Host", sni or "levee.test")])
        assert resp.status == 200, resp

    # The default is the first certificate listed, whichever it is.
    _d2, lv2 = demo_levee(h, pki, [pki.b, pki.a])
    c = tls_client(h, lv2.tls_port, client_context(pki.ca), None)
    assert subject_cn(c.peer_cert) == "b.test"
    c = tls_client(h, lv2.tls_port, client_context(pki.ca), "a.test")
    assert subject_cn(c.peer_cert) == "a.test"


def test_curl_verifies_the_certificate_of_the_name_it_asked_for(h, pki):
    _d, lv = demo_levee(h, pki)

    for name in ("a.test", "b.test"):
        r = curl(["-v", "--cacert", pki.ca, "--resolve", f"{name}:{lv.tls_port}:127.0.0.1",
                  f"https://{name}:{lv.tls_port}/echo/{name}"])
        assert r.returncode == 0, r.stderr
        assert f"subject: CN={name}" in r.stderr, r.stderr
        assert "ALPN: server accepted h2" in r.stderr, r.stderr  # issue 17: HTTP/2
        body = json.loads(r.stdout)
        assert body["path"] == f"/echo/{name}"
        assert [v for k, v in body["headers"] if k.lower() == "x-forwarded-proto"] == ["https"]


def test_keep_alive_over_tls_serves_many_requests_on_one_handshake(h, pki):
    _d, lv = demo_levee(h, pki)
    c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")

    for i in range(6):
        resp = c.get(f"/echo/{i}")
        assert resp.status == 200, resp
        assert json.loads(resp.body)["path"] == f"/echo/{i}"

    assert handshakes(lv, "success") == 1
    assert handshakes(lv, "failure") == 0


def test_an_8_mib_body_crosses_tls_intact_both_ways(h, pki):
    mirror = h.scripted(serve(lambda conn, req: conn.respond(200, req.body)), id="mirror")
    lv = start_levee(h, [pki.a], f"""
        backends:
          - id: mirror
            url: {mirror.url}
    """)
    body = pattern_bytes(8 * 1024 * 1024, seed=16)
    c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test", timeout=60)

    resp = c.request("POST", "/mirror", [("Content-Type", "application/octet-stream")], body=body,
                     timeout=60)

    assert resp.status == 200, resp
    assert resp.complete and len(resp.body) == len(body)
    assert sha256(resp.body) == sha256(body)
    [req] = mirror.wait_requests(1)
    assert req.body_length == len(body) and req.body_sha256 == sha256(body)
    # ... and the connection carries on.
    assert c.request("POST", "/mirror", body=b"after").body == b"after"


def test_x_forwarded_proto_is_https_on_tls_and_http_on_plain(h, pki):
    _d, lv = demo_levee(h, pki)

    tls = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
    assert echo_headers(tls.get("/echo", [("X-Forwarded-Proto", "http")]),
                        "x-forwarded-proto") == ["https"]
    plain = lv.client()
    assert echo_headers(plain.get("/echo", [("X-Forwarded-Proto", "https")]),
                        "x-forwarded-proto") == ["http"]


def _permissive_server_context(pair):
    """A Python server context that still accepts TLS 1.1 (the control below)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(str(pair[0]), str(pair[1]))
    return ctx


def test_a_tls_1_1_client_is_refused_and_1_2_is_served(h, pki):
    _d, lv = demo_levee(h, pki, min_version="1.2")
    legacy = client_context(pki.ca, min_version=ssl.TLSVersion.TLSv1_1,
                            max_version=ssl.TLSVersion.TLSv1_1, legacy=True)

    # Control: this client does complete a TLS 1.1 handshake with a server that
    # allows it, so levee's refusal below is levee's doing (OpenSSL 3's defaults
    # refuse TLS 1.1 too: min_version 1.3 below is the sharper test).
    srv_ctx = _permissive_server_context(pki.a)
    listener = socket.create_server(("127.0.0.1", 0))
    got = {}

    def accept_one():
        s, _ = listener.accept()
        s.settimeout(10)
        try:
            with srv_ctx.wrap_socket(s, server_side=True) as t:
                got["version"] = t.version()
        except (ssl.SSLError, OSError) as e:
            got["error"] = e

    t = threading.Thread(target=accept_one, daemon=True)
    t.start()
    with legacy.wrap_socket(socket.create_connection(listener.getsockname(), timeout=10)) as s:
        assert s.version() == "TLSv1.1"
    t.join(10)
    listener.close()
    assert got.get("version") == "TLSv1.1", got

    with pytest.raises((ssl.SSLError, OSError)):
        tls_client(h, lv.tls_port, legacy, "a.test")
    wait_for(lambda: handshakes(lv, "failure") == 1, what="the failed handshake counted")

    tls12 = client_context(pki.ca, max_version=ssl.TLSVersion.TLSv1_2)
    c = tls_client(h, lv.tls_port, tls12, "a.test")
    assert c.sock.version() == "TLSv1.2"
    assert c.get("/echo").status == 200


def test_min_version_1_3_refuses_a_tls_1_2_only_client(h, pki):
    _d, lv = demo_levee(h, pki, min_version="1.3")

    tls12 = client_context(pki.ca, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, OSError)):
        tls_client(h, lv.tls_port, tls12, "a.test")
    r = curl(["--cacert", pki.ca, "--tls-max", "1.2", "--resolve",
              f"a.test:{lv.tls_port}:127.0.0.1", f"https://a.test:{lv.tls_port}/echo"])
    assert r.returncode != 0, r.stdout
    wait_for(lambda: handshakes(lv, "failure") == 2, what="both failed handshakes counted")

    c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
    assert c.sock.version() == "TLSv1.3"
    assert c.get("/echo").status == 200


def test_a_silent_or_stalled_handshake_is_cut_after_handshake_timeout(h, pki):
    _d, lv = demo_levee(h, pki, handshake_timeout="1s")

    silent = socket.create_connection(("127.0.0.1", lv.tls_port))
    t_silent = time.monotonic()
    hello = client_hello()
    half = socket.create_connection(("127.0.0.1", lv.tls_port))
    half.sendall(hello[: len(hello) // 2])
    t_half = time.monotonic()
    try:
        # While both hang, others are served.
        c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
        assert c.get("/echo").status == 200

        closed_silent = closed_at(silent, t_silent + 15) - t_silent
        closed_half = closed_at(half, t_half + 15) - t_half
    finally:
        silent.close()
        half.close()

    assert 0.9 <= closed_silent <= 8, closed_silent
    assert 0.9 <= closed_half <= 8, closed_half
    wait_for(lambda: handshakes(lv, "failure") == 2, what="two handshake failures counted")
    assert handshakes(lv, "success") == 1
    # ... and levee keeps serving.
    c2 = tls_client(h, lv.tls_port, client_context(pki.ca), "b.test")
    assert c2.get("/echo").status == 200
    assert c.get("/echo").status == 200


def test_a_plain_http_client_on_the_tls_port_is_dropped_and_counted(h, pki):
    _d, lv = demo_levee(h, pki, handshake_timeout="60s")

    s = socket.create_connection(("127.0.0.1", lv.tls_port))
    try:
        start = time.monotonic()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
        # Dropped on the spot, not at the (60 s) handshake timeout.
        closed_at(s, start + 20)
    finally:
        s.close()

    wait_for(lambda: handshakes(lv, "failure") == 1, what="the garbage handshake counted")
    assert handshakes(lv, "success") == 0
    c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
    assert c.get("/echo").status == 200
    assert handshakes(lv, "success") == 1


def test_sighup_reloads_certificates_and_keeps_open_tls_connections(h, pki):
    a_crt, a_key = pki.copy(pki.a, h.tmp_path, "a")
    _d, lv = demo_levee(h, pki, [(a_crt, a_key), pki.b])
    before = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
    assert before.get("/echo").status == 200
    old_serial = serial_of(before)

    renewed = pki.issue(f"a-renewed-{h.tmp_path.name}", "a.test", ["DNS:a.test", "IP:127.0.0.1"])
    pki.copy(renewed, h.tmp_path, "a")  # the same file names levee reads
    lv.signal(signal.SIGHUP)

    def new_serial():
        c = tls_client(h, lv.tls_port, client_context(pki.ca), "a.test")
        serial = serial_of(c)
        c.close()
        return serial if serial != old_serial else None

    serial = wait_for(new_serial, timeout=20, interval=0.2, what="the renewed certificate")
    assert serial == cert_serial(renewed[0]) != old_serial
    # The connection from before the reload still works.
    for _ in range(3):
        assert before.get("/echo").status == 200
    assert serial_of(before) == old_serial
    # SNI still picks b.test.
    assert subject_cn(tls_client(h, lv.tls_port, client_context(pki.ca), "b.test").peer_cert) \
        == "b.test"


def test_websocket_over_tls(h, pki):
    ws = ws_backend(h)
    lv = start_levee(h, [pki.a], f"""
        backends:
          - id: ws
            url: {ws.url}
    """)
    import websockets

    async def round_trip():
        async with websockets.connect(f"wss://127.0.0.1:{lv.tls_port}/chat",
                                      ssl=client_context(pki.ca, alpn=None),
                                      server_hostname="a.test", open_timeout=20,
                                      close_timeout=5) as conn:
            await conn.send("hello over wss")
            return await asyncio.wait_for(conn.recv(), 20)

    assert asyncio.run(round_trip()) == "hello over wss"
    assert ws.paths == ["/chat"]


# --------------------------------------------------------------------------
# backends over TLS


def echo_json(conn, req):
    """Answers the request with what the TLS backend saw (its TLS facts too)."""
    conn.respond_json({"path": req.target, "conn": conn.index, "tls": conn.tls,
                       "headers": req.headers.items})


def backend_yaml(b, tls=None, extra=""):
    text = f"backends:\n  - id: {b.id}\n    url: {b.url}\n"
    if tls:
        text += "    tls: {" + ", ".join(f"{k}: {v}" for k, v in tls.items()) + "}\n"
    return text + extra


def test_an_https_backend_verified_with_ca_file(h, pki):
    b = tls_backend(h, serve(echo_json), pki.backend, id="secure", host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))

    resp = lv.client().get("/over-tls")

    assert resp.status == 200, resp
    seen = json.loads(resp.body)
    assert seen["path"] == "/over-tls"
    assert seen["tls"]["sni"] == "localhost"  # SNI: the URL's host
    assert seen["tls"]["alpn"] == "http/1.1"


def test_server_name_names_the_backend_when_the_url_is_an_ip(h, pki):
    b = tls_backend(h, serve(echo_json), pki.backend, id="byip")  # https://127.0.0.1:PORT
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca,
                                                  "server_name": "backend.test"}))

    resp = lv.client().get("/named")

    assert resp.status == 200, resp
    assert json.loads(resp.body)["tls"]["sni"] == "backend.test"

    # Without it, the IP is what is verified: the certificate has no IP SAN.
    lv2 = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))
    resp = lv2.client().get("/unnamed")
    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "tls_failed"
    wait_for(lambda: "certificate verify failed" in lv2.stderr(), what="the reason in the log")


def test_a_backend_with_a_certificate_from_another_ca_is_refused(h, pki):
    b = tls_backend(h, serve(echo_json), pki.wrong_backend, id="impostor",
                    host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))

    resp = lv.client().get("/secret")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "tls_failed"
    wait_for(lambda: "certificate verify failed" in lv.stderr(), what="the reason in the log")
    assert "impostor" in [ln for ln in lv.stderr().splitlines()
                          if "certificate verify failed" in ln][0]
    assert b.requests == []  # nothing was sent to it
    wait_for(lambda: b.handshake_errors, what="the aborted handshake at the backend")


def test_insecure_skip_verify_accepts_any_certificate_and_warns_at_load(h, pki):
    b = tls_backend(h, serve(echo_json), pki.wrong_backend, id="unchecked",
                    host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca,
                                                  "insecure_skip_verify": "true"}))

    # The warning is there before any request.
    wait_for(lambda: "insecure_skip_verify" in lv.stderr(), what="the warning at load")
    [line] = [ln for ln in lv.stderr().splitlines() if "insecure_skip_verify" in ln]
    assert " warn: " in line, line
    assert "backend unchecked:" in line, f"the warning should name the backend: {line}"

    resp = lv.client().get("/trusting")
    assert resp.status == 200, resp
    assert json.loads(resp.body)["path"] == "/trusting"


def test_a_backend_requiring_a_client_certificate(h, pki):
    b = tls_backend(h, serve(echo_json), pki.backend, id="mtls", host_in_url="localhost",
                    client_ca=pki.ca)
    without = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))

    resp = without.client().get("/no-cert")

    # TLS 1.3: the backend refuses after levee's side of the handshake is done;
    # levee still reports it as a TLS failure, with the alert in the log
    assert resp.status == 502, resp
    assert json.loads(resp.body)["error"] == "tls_failed", resp
    assert b.requests == []
    wait_for(lambda: b.handshake_errors, what="the refused handshake at the backend")
    wait_for(lambda: re.search(r"backend mtls: TLS (handshake failed|error): .*certificate",
                               without.stderr()),
             what="the backend's refusal in levee's log")

    cert, key = pki.client
    with_cert = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca, "cert": cert,
                                                         "key": key}))
    resp = with_cert.client().get("/with-cert")
    assert resp.status == 200, resp
    seen = json.loads(resp.body)
    assert seen["path"] == "/with-cert"
    assert seen["tls"]["peer_cn"] == "levee-client"


def test_tls_backend_connections_are_pooled(h, pki):
    b = tls_backend(h, serve(echo_json), pki.backend, id="pooled", host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))
    c = lv.client()

    for i in range(30):
        resp = c.get(f"/r{i}")
        assert resp.status == 200, resp

    assert len(b.requests) == 30
    assert b.connections <= 2, f"{b.connections} TLS connections for 30 sequential requests"
    assert len(b.handshakes) == b.connections


def test_tls_sessions_to_a_backend_are_resumed_on_new_connections(h, pki):
    def one_and_close(conn):
        req = conn.read_request()
        if req is not None:
            conn.respond(200, b"ok", [("Connection", "close")])

    b = tls_backend(h, one_and_close, pki.backend, id="resumable", host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca}))
    c = lv.client()

    for i in range(3):
        resp = c.get(f"/s{i}")
        assert resp.status == 200, resp
        assert resp.body == b"ok"

    wait_for(lambda: len(b.handshakes) >= 3, what="three TLS connections at the backend")
    reused = [x["session_reused"] for x in b.handshakes]
    assert reused[0] is False
    assert reused[1:] == [True] * (len(reused) - 1), b.handshakes


FAST_HEALTH = """
health_check:
  interval: 200ms
  timeout: 1s
  unhealthy_threshold: 2
  healthy_threshold: 2
"""


def test_health_checks_go_over_tls(h, pki):
    checks = []

    def respond(conn, req):
        if req.path == "/health":
            checks.append((req.headers.get("user-agent"), conn.tls["sni"]))
            conn.respond(200, b"healthy\n")
        else:
            conn.respond(200, b"app\n")

    b = tls_backend(h, serve(respond), pki.backend, id="checked", host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca},
                                             "    health_check_enabled: true\n" + FAST_HEALTH))

    wait_for(lambda: len(checks) >= 3, what="health checks at the TLS backend")
    assert set(checks) == {("levee-health-check", "localhost")}
    assert lv.client().get("/app").status == 200


def test_a_checked_backend_with_a_wrong_ca_is_unhealthy(h, pki):
    b = tls_backend(h, serve(echo_json), pki.wrong_backend, id="forged", host_in_url="localhost")
    lv = start_levee(h, [pki.a], backend_yaml(b, {"ca_file": pki.ca},
                                             "    health_check_enabled: true\n" + FAST_HEALTH))

    # No request before the verdict: the checks alone must find it out.
    line = wait_for(lambda: [ln for ln in lv.stderr().splitlines()
                             if "forged" in ln and "unhealthy" in ln],
                    what="the backend marked unhealthy")[0]
    assert "TLS" in line and "certificate verify failed" in line, line
    assert b.requests == []

    resp = lv.client().get("/anything")
    assert resp.status == 503, resp
    assert error_body(resp)["error"] == "no_backend"


def test_a_pools_tls_is_the_default_of_its_https_backends(h, pki):
    a = tls_backend(h, serve(echo_json), pki.backend, id="pa")      # https://127.0.0.1:PORT
    b = tls_backend(h, serve(echo_json), pki.backend, id="pb")
    o = tls_backend(h, serve(echo_json), pki.backend, id="other")
    lv = start_levee(h, [pki.a], f"""
        pools:
          named:
            load_balancing: round_robin
            tls: {{ ca_file: {pki.ca}, server_name: backend.test }}
            backends:
              - {{ id: pa, url: "{a.url}" }}
              - {{ id: pb, url: "{b.url}", tls: {{ server_name: other.test }} }}
          plain:
            backends: [{{ id: other, url: "{o.url}", tls: {{ ca_file: {pki.ca} }} }}]
        routes:
          - match: {{ path_prefix: /a }}
            pool: named
          - match: {{ path_prefix: /o }}
            pool: plain
    """)
    seen = set()
    for i in range(6):
        resp = lv.client().get(f"/a/{i}")
        if resp.status == 200:
            seen.add(json.loads(resp.body)["tls"]["sni"])
        else:
            assert resp.status in (502, 503), resp
    # pa: the pool's CA and name; pb: its own name (not in the certificate:
    # refused), with the pool's CA all the same.
    assert seen == {"backend.test"}, seen
    assert a.requests and not b.requests, (len(a.requests), len(b.requests))
    wait_for(lambda: "pb" in lv.stderr() and "certificate verify failed" in lv.stderr(),
             what="pb refused for its own server_name")
    # Another pool's backend does not get the named pool's server_name: its IP is verified.
    resp = lv.client().get("/o/x")
    assert resp.status == 502 and error_body(resp)["error"] == "tls_failed", resp
