"""95 — the admin port under attack (issue 11, finding 7), each attack as a
hostile client or web page would make it, and what levee does now:

- pipelined requests from a client that reads nothing: levee stops reading
  once answers are unwritten past a bound, so its memory stays flat (it grew
  by 232 MB for 216 KB of `GET /`), and every answer still arrives, in order,
  once the client reads; a client that never reads is dropped after
  admin.timeout;
- a flood of connections: at most admin.max_connections are served, the
  others closed at once;
- silent, trickling and oversized requests: closed, 408, 413;
- CSRF: a POST from another site's page (foreign Origin, Sec-Fetch-Site
  cross-site, or a plain form without X-Levee-Admin) is refused with 403 on a
  loopback listener without a token; with admin.token set the token decides;
  no Access-Control-Allow-* header is ever sent;
- DNS rebinding: a Host that is not the listener's address (or localhost on
  loopback, or a name in admin.allowed_hosts) gets 421.

Backends are demo backends; memory and descriptor counts come from /proc.
"""

import json
import os
import re
import select
import socket
import time

from adminutil import admin_get, admin_ready, backend_entry, generation, json_of
from harness import PORTS, REPO_ROOT, ProtocolError, RawClient, build_request, wait_for

MiB = 1024 * 1024
DASHBOARD_LEN = len((REPO_ROOT / "src" / "admin" / "dashboard.html").read_bytes())


def authority(lv):
    return f"{lv.admin_host}:{lv.admin_port}"


def admin_client(h, lv, timeout=None):
    admin_ready(lv)
    kw = {"timeout": timeout} if timeout else {}
    return h.client(lv.admin_port, host=lv.admin_host, **kw)


def raw(lv, method, path, headers=(), body=None, host=True, version="HTTP/1.1"):
    """One request on a fresh admin connection; `host` True: the listener's
    own address, False: none, or the Host value to send. Returns the response
    and whether levee closed the connection after it."""
    admin_ready(lv)
    hdrs = list(headers)
    if host is True:
        hdrs.insert(0, ("Host", authority(lv)))
    elif host:
        hdrs.insert(0, ("Host", host))
    if method == "POST" and body is None:
        body = b""
    c = RawClient(lv.admin_port, host=lv.admin_host)
    try:
        c.send(build_request(method, path, hdrs, body, version=version, host=False))
        resp = c.read_response(head=(method == "HEAD"))
        closed = resp.headers.get("connection", "").lower() == "close"
        if closed:
            assert c.wait_closed() in ("eof", "reset"), "Connection: close, but it stayed open"
        return resp, closed
    finally:
        c.close()


def no_cors(resp):
    bad = [k for k, _v in resp.headers.items if k.lower().startswith("access-control-")]
    assert not bad, f"levee must never send CORS headers: {bad} in {resp!r}"


def fd_count(lv):
    return len(os.listdir(f"/proc/{lv.pid}/fd"))


def holds_connection(lv, sock):
    """Whether levee still has a descriptor for the connection whose client end
    is `sock` (found in /proc by its ports)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{lv.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{lv.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    client_port = sock.getsockname()[1]
    for row in open(f"/proc/{lv.pid}/net/tcp").read().splitlines()[1:]:
        cols = row.split()
        local_port = int(cols[1].rsplit(":", 1)[1], 16)
        remote_port = int(cols[2].rsplit(":", 1)[1], 16)
        if (local_port, remote_port) == (lv.admin_port, client_port) and cols[9] in inodes:
            return True
    return False


def flood(sock, blob, on_progress=None, stall=2.0):
    """Send `blob` without reading a byte of the answers, until all of it is
    sent or levee takes nothing for `stall` seconds (its receive buffer and our
    send buffer are full: it stopped reading) or closes the connection.
    on_progress() runs after each send and may return True to stop. Returns the
    number of bytes sent."""
    sock.setblocking(False)
    sent = 0
    try:
        while sent < len(blob):
            _r, w, _x = select.select([], [sock], [], stall)
            if not w:
                break
            try:
                sent += sock.send(blob[sent:sent + 64 * 1024])
            except BlockingIOError:
                continue
            except OSError:  # levee closed it (a test of admin.timeout)
                break
            if on_progress and on_progress():
                break
    finally:
        sock.setblocking(True)
    return sent


def admin_section(**keys):
    """An `admin:` section on a free port (the harness adds one only when the
    YAML has none) with these keys."""
    lines = [f"  listen: 127.0.0.1:{PORTS.get()}"]
    for k, v in keys.items():
        lines.append(f"  {k}: {json.dumps(v) if isinstance(v, (list, str)) else v}")
    return "admin:\n" + "\n".join(lines) + "\n"


def one_backend(h, extra=""):
    b = h.demo("a")
    return h.levee(f"backends:\n  - id: a\n    url: {b.url}\n" + extra)


# --------------------------------------------------------------------------
# pipelining and backpressure


def test_pipelined_dashboard_flood_that_is_not_read_keeps_memory_bounded(h):
    lv = h.levee("backends: []\n")
    for _ in range(3):  # warm up: pools and the page's first copies are not the attack
        assert admin_get(lv, "/").status == 200
    rss0 = lv.rss_bytes()
    limit = 32 * MiB
    req = f"GET / HTTP/1.1\r\nHost: {authority(lv)}\r\n\r\n".encode()
    blob = req * (4 * MiB // len(req))
    peak = [rss0]

    def watch():
        peak[0] = max(peak[0], lv.rss_bytes())
        return peak[0] - rss0 > limit  # over the bound: stop at once, the test fails

    c = admin_client(h, lv)
    sent = flood(c.sock, blob, watch)
    watch()

    assert peak[0] - rss0 <= limit, (
        f"levee's RSS grew by {(peak[0] - rss0) / MiB:.0f} MiB for {sent / MiB:.1f} MiB of "
        f"pipelined GET / that nobody read")
    assert sent >= len(req) * 100, f"only {sent} bytes were taken"
    # the connection is alive: reading, the client gets its answers, each whole
    for i in range(20):
        resp = c.read_response(timeout=30)
        assert resp.status == 200 and len(resp.body) == DASHBOARD_LEN, (i, resp)
    c.close()
    assert admin_get(lv, "/metrics").status == 200
    assert lv.rss_bytes() - rss0 <= limit


def test_pipelined_answers_all_arrive_in_order_once_the_client_reads(h):
    lv = one_backend(h)
    rss0 = lv.rss_bytes()
    host = authority(lv)
    paths = ["/health", "/nope", "/backends/health"]
    want = {"/health": 200, "/nope": 404, "/backends/health": 200}
    one = "".join(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n" for p in paths).encode()
    rounds = (3 * MiB) // len(one)
    blob = one * rounds + f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    expected = [want[p] for p in paths] * rounds + [200]
    peak = [rss0]

    def watch():
        peak[0] = max(peak[0], lv.rss_bytes())
        return peak[0] - rss0 > 16 * MiB

    c = admin_client(h, lv)
    sent = flood(c.sock, blob, watch)
    watch()
    assert peak[0] - rss0 <= 16 * MiB, (
        f"RSS grew by {(peak[0] - rss0) / MiB:.0f} MiB for {sent / MiB:.1f} MiB of unread "
        f"pipelined requests")

    # now read everything to the end while sending the rest
    got = bytearray()
    c.sock.settimeout(1.0)
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, f"answers still coming after 120 s ({len(got)} bytes)"
        if sent < len(blob):
            _r, w, _x = select.select([], [c.sock], [], 0)
            if w:
                c.sock.setblocking(False)
                try:
                    sent += c.sock.send(blob[sent:sent + 64 * 1024])
                except BlockingIOError:
                    pass
                c.sock.settimeout(1.0)
        try:
            piece = c.sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not piece:
            break
        got += piece
    assert sent == len(blob)
    statuses = []
    pos = 0
    while pos < len(got):
        end = got.index(b"\r\n\r\n", pos)
        head = bytes(got[pos:end]).decode("latin-1")
        m = re.match(r"HTTP/1\.1 (\d{3}) ", head)
        assert m, head
        length = int(re.search(r"(?im)^content-length: *(\d+)\r?$", head).group(1))
        statuses.append(int(m.group(1)))
        pos = end + 4 + length
    assert pos == len(got), "the answers do not add up to what was received"
    assert len(statuses) == len(expected), (len(statuses), len(expected))
    assert statuses == expected, "answers out of order"


def test_a_client_that_never_reads_is_dropped_after_the_admin_timeout(h):
    lv = h.levee("backends: []\n" + admin_section(timeout="1s"))
    req = f"GET / HTTP/1.1\r\nHost: {authority(lv)}\r\n\r\n".encode()
    c = admin_client(h, lv)
    assert c.get("/metrics", [("Host", authority(lv))]).status == 200
    assert holds_connection(lv, c.sock)

    flood(c.sock, req * 20000)

    # levee holds the connection while answers are unwritten, then gives up on it
    wait_for(lambda: not holds_connection(lv, c.sock), 30, 0.05,
             "levee to close the connection of a client that reads nothing")
    assert admin_get(lv, "/metrics").status == 200


# --------------------------------------------------------------------------
# connections, silence, trickling, bodies


def test_a_connection_flood_is_capped_at_max_connections(h):
    lv = h.levee("backends: []\n" + admin_section(max_connections=8))
    admin_ready(lv)
    base = fd_count(lv)

    def served_one():
        """A connection levee serves (a GET answered on it). Until levee has
        seen the end of the harness's probe connections, that one still counts
        against the cap and a new one may be refused: then try again."""
        c = admin_client(h, lv)
        try:
            resp = c.get("/metrics", [("Host", authority(lv))], timeout=10)
        except (ProtocolError, OSError):
            c.close()
            return None
        assert resp.status == 200, resp
        return c

    served = [wait_for(served_one, 20, 0.05, "a connection within the cap") for _ in range(8)]

    flood_conns = [admin_client(h, lv) for _ in range(40)]

    for i, c in enumerate(flood_conns):
        assert c.wait_closed(timeout=20) in ("eof", "reset"), f"connection {i} over the cap stayed open"
    assert fd_count(lv) <= base + 8 + 2, f"{fd_count(lv)} fds open, {base} before 8 connections"
    for c in served:  # the ones within the cap are untouched
        assert c.get("/metrics", [("Host", authority(lv))]).status == 200
    refusals = [ln for ln in lv.stderr().splitlines() if "admin.max_connections" in ln]
    assert 1 <= len(refusals) <= 3, f"the refusals should be logged once in a while: {refusals}"

    for c in served:
        c.close()
    assert wait_for(served_one, 20, 0.05, "a new connection served once the others closed")


def test_silent_and_trickling_connections_are_closed(h):
    lv = h.levee("backends: []\n" + admin_section(timeout="1s"))

    silent = admin_client(h, lv)
    assert silent.wait_closed(timeout=20) == "eof", "a connection that says nothing stays open"

    partial = admin_client(h, lv)
    partial.send(f"GET /health HTTP/1.1\r\nHost: {authority(lv)}\r\n".encode())
    resp = partial.read_response(timeout=20)
    assert resp.status == 408 and json_of(resp)["status"] == 408, resp
    assert partial.wait_closed(timeout=20) in ("eof", "reset")

    # one byte every 100 ms: reads do not extend the time a request may take
    trickle = admin_client(h, lv)
    text = f"GET /health HTTP/1.1\r\nHost: {authority(lv)}\r\nX-Pad: {'p' * 400}\r\n\r\n".encode()
    answered = None
    for i in range(len(text)):
        if not trickle.try_send(text[i:i + 1]):
            break
        r, _w, _x = select.select([trickle.sock], [], [], 0.1)
        if r:
            answered = trickle.read_response(timeout=20)
            break
    assert answered is not None and answered.status == 408, (
        f"a request trickled over {len(text) * 0.1:.0f} s was not cut at admin.timeout: "
        f"{answered!r}")


def test_request_bodies_are_dropped_up_to_a_small_cap(h):
    lv = one_backend(h)
    gen = generation(lv)
    host = authority(lv)

    # a small body on a GET is read and dropped: the next request is parsed right
    c = admin_client(h, lv)
    c.send(build_request("GET", "/health", [("Host", host)], body=b"x" * 100)
           + build_request("GET", "/nope", [("Host", host)]))
    assert c.read_response().status == 200
    assert c.read_response().status == 404

    # a large one is refused before it is read, and the connection closed
    big, closed = raw(lv, "POST", "/reload", [("X-Levee-Admin", "1"),
                                              ("Content-Length", str(10 * MiB))])
    assert (big.status, closed) == (413, True), big
    c = admin_client(h, lv)
    c.send(build_request("POST", "/backends/a/disable", [("Host", host), ("X-Levee-Admin", "1")],
                         body=b"y" * (64 * 1024), chunked=True, chunk_size=4096))
    resp = c.read_response()
    assert resp.status == 413 and resp.headers.get("connection", "").lower() == "close", resp
    assert generation(lv) == gen, "a refused POST /reload reloaded"
    assert backend_entry(lv, "a")["admin_state"] == "enabled"


# --------------------------------------------------------------------------
# CSRF: POSTs from another site's page


def test_cross_site_posts_are_refused_on_a_loopback_listener_without_token(h):
    lv = one_backend(h)
    gen = generation(lv)
    own = f"http://{authority(lv)}"
    evil_origin = [("Origin", "http://evil.example"), ("X-Levee-Admin", "1")]
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    attacks = {
        "foreign Origin": (evil_origin, "Origin"),
        "Origin null": ([("Origin", "null"), ("X-Levee-Admin", "1")], "Origin"),
        "plain form post": (form, "X-Levee-Admin"),
        "form post from the page's own origin": (form + [("Origin", own)], "X-Levee-Admin"),
        "Sec-Fetch-Site cross-site": ([("Sec-Fetch-Site", "cross-site"), ("X-Levee-Admin", "1")],
                                      "Sec-Fetch-Site"),
        "Sec-Fetch-Site same-site": ([("Sec-Fetch-Site", "same-site"), ("X-Levee-Admin", "1")],
                                     "Sec-Fetch-Site"),
    }
    for what, (headers, named) in attacks.items():
        for path in ("/backends/a/disable", "/reload"):
            resp, _closed = raw(lv, "POST", path, headers)
            assert resp.status == 403, (what, path, resp)
            body = json_of(resp)
            assert body["ok"] is False and named in body["error"], (what, body)
            no_cors(resp)
    assert backend_entry(lv, "a")["admin_state"] == "enabled", "a refused POST disabled it"
    assert generation(lv) == gen, "a refused POST reloaded"

    # a CORS preflight gets nothing that would let the browser go on
    pre, _ = raw(lv, "OPTIONS", "/backends/a/disable", [
        ("Origin", "http://evil.example"), ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "x-levee-admin")])
    assert pre.status == 405, pre
    no_cors(pre)

    # tools (curl -H 'X-Levee-Admin: 1') and the dashboard's own origin pass
    ok, _ = raw(lv, "POST", "/backends/a/disable", [("X-Levee-Admin", "1")])
    assert ok.status == 200 and json_of(ok)["admin_state"] == "disabled", ok
    no_cors(ok)
    ok, _ = raw(lv, "POST", "/backends/a/enable",
                [("X-Levee-Admin", "1"), ("Origin", own), ("Sec-Fetch-Site", "same-origin")])
    assert ok.status == 200 and json_of(ok)["admin_state"] == "enabled", ok
    ok, _ = raw(lv, "POST", "/reload", [("X-Levee-Admin", "1")])
    assert ok.status == 200 and json_of(ok)["generation"] == gen + 1, ok


def test_with_a_token_the_token_decides(h):
    lv = one_backend(h, admin_section(token="s3cret"))

    for headers in ([("X-Levee-Admin", "1")],
                    [("X-Levee-Admin", "1"), ("Authorization", "Bearer wrong")],
                    [("Authorization", "Bearer s3cret"), ("Authorization", "Bearer wrong")]):
        resp, _ = raw(lv, "POST", "/backends/a/disable", headers)
        assert resp.status == 401, (headers, resp)
        assert resp.headers.get("www-authenticate", "").lower().startswith("bearer"), resp
        assert "token" in json_of(resp)["error"]
        no_cors(resp)
    assert backend_entry(lv, "a")["admin_state"] == "enabled"

    ok, _ = raw(lv, "POST", "/backends/a/disable", [("Authorization", "Bearer s3cret")])
    assert ok.status == 200 and json_of(ok)["admin_state"] == "disabled", ok
    ok, _ = raw(lv, "POST", "/backends/a/enable", [("authorization", "bearer s3cret"),
                                                   ("Origin", "http://evil.example")])
    assert ok.status == 200, "with the token, the Origin does not matter (a page cannot send it)"


# --------------------------------------------------------------------------
# DNS rebinding: the Host must name the listener


def test_a_foreign_host_gets_421(h):
    lv = one_backend(h)
    port = lv.admin_port

    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}",
                 "127.0.0.1", f"localhost.:{port}", f"[::1]:{port}"):
        for path in ("/backends/health", "/metrics", "/health", "/api/history", "/"):
            resp, closed = raw(lv, "GET", path, host=host)
            assert resp.status == 421, (host, path, resp)
            assert closed, f"the connection of a misdirected request should close: {resp!r}"
            assert "Host" in json_of(resp)["error"]
            assert b"backends" not in resp.body and b"levee_" not in resp.body, resp
    post, _ = raw(lv, "POST", "/backends/a/disable", [("X-Levee-Admin", "1")],
                  host=f"evil.example:{port}")
    assert post.status == 421, post
    assert backend_entry(lv, "a")["admin_state"] == "enabled"

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        for path in ("/backends/health", "/metrics"):
            resp, _ = raw(lv, "GET", path, host=host)
            assert resp.status == 200, (host, path, resp)

    missing, closed = raw(lv, "GET", "/metrics", host=False)
    assert (missing.status, closed) == (400, True), missing
    two, _ = raw(lv, "GET", "/metrics", [("Host", "evil.example")])
    assert two.status == 400, two
    old, _ = raw(lv, "GET", "/health", host=False, version="HTTP/1.0")
    assert old.status == 200, "HTTP/1.0 needs no Host"
    old, _ = raw(lv, "GET", "/health", host="evil.example", version="HTTP/1.0")
    assert old.status == 421, old


def test_allowed_hosts_names_the_listener_too(h):
    lv = one_backend(h, admin_section(allowed_hosts=["levee.internal", "admin.example:8443"]))
    port = lv.admin_port

    for host in ("levee.internal", f"levee.internal:{port}", "Levee.Internal:80",
                 "admin.example:8443", f"127.0.0.1:{port}"):
        resp, _ = raw(lv, "GET", "/backends/health", host=host)
        assert resp.status == 200, (host, resp)
    for host in ("other.internal", f"admin.example:{port}", "levee.internal.evil.example"):
        resp, _ = raw(lv, "GET", "/backends/health", host=host)
        assert resp.status == 421, (host, resp)
    ok, _ = raw(lv, "POST", "/backends/a/drain",
                [("X-Levee-Admin", "1"), ("Origin", "https://levee.internal")], host="levee.internal")
    assert ok.status == 200, ok
