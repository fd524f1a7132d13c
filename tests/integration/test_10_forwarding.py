"""10 — forwarding: methods, bodies both ways, keep-alive, HTTP/1.0, pipelining,
bodiless responses, 1xx, Expect: 100-continue, streaming with bounded memory."""

import hashlib
import threading
import time

import pytest

from harness import (
    build_request,
    chunk_encode,
    echo_handler,
    pattern_bytes,
    serve,
    sha256,
)

KiB = 1024
MiB = 1024 * 1024


def one_backend(b):
    return f"""
        backends:
          - id: {b.id}
            url: {b.url}
    """


# --------------------------------------------------------------------------
# methods and targets


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_method_path_and_query_reach_backend_intact(h, method):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    target = "/api/v1/items/42;v=2?q=1&r=a%20b&empty=&s=%2F&u=%C3%A9"
    body = b"payload" if method in ("POST", "PUT", "PATCH") else None

    c = lv.client()
    resp = c.request(method, target, [("Accept", "*/*")], body=body)

    assert resp.status == 200, resp
    [seen] = b.wait_requests(1)
    assert seen.method == method
    assert seen.target == target, "the request target must reach the backend byte for byte"
    assert seen.version == "HTTP/1.1"
    if body is not None:
        assert seen.body_sha256 == sha256(body) and seen.body_length == len(body)
    if method == "HEAD":
        assert resp.body == b""
    else:
        assert resp.json()["target"] == target
    # the connection is still usable afterwards (the HEAD reply had no body)
    again = c.get("/again")
    assert again.status == 200 and again.json()["target"] == "/again"


# --------------------------------------------------------------------------
# request bodies


@pytest.mark.parametrize("size", [0, 1, 64 * KiB, 8 * MiB], ids=["0", "1", "64KiB", "8MiB"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_request_body_arrives_intact(h, framing, size):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    body = pattern_bytes(size, seed=size)

    c = lv.client(timeout=60)
    # odd chunk sizes, so that levee cannot rely on the client's chunk boundaries
    resp = c.request("POST", "/upload", [("Content-Type", "application/octet-stream")],
                     body=body, chunked=(framing == "chunked"), chunk_size=7001, timeout=60)

    assert resp.status == 200, resp
    echoed = resp.json()
    assert echoed["body_length"] == size
    assert echoed["body_sha256"] == sha256(body)
    [seen] = b.wait_requests(1)
    assert seen.complete


# --------------------------------------------------------------------------
# response bodies


def framed_responder(conn, req):
    """/<framing>/<size>: a body of `size` pattern bytes framed by Content-Length,
    chunked coding, or the close of the connection."""
    _, framing, size = req.path.split("/")
    size = int(size)
    body = pattern_bytes(size, seed=size)
    if framing == "length":
        conn.respond(200, body, [("Content-Type", "application/octet-stream")])
    elif framing == "chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunk_encode(body, 5003))
    else:  # close-delimited: no Content-Length, no Transfer-Encoding
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + body)
        conn.shutdown_write()
        conn.wait_peer_close(5)
        return "close"


def test_response_bodies_arrive_intact(h):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None or framed_responder(conn, req) == "close":
                return

    b = h.scripted(handler, id="framed")
    lv = h.levee(one_backend(b))
    c = lv.client(timeout=60)

    for framing in ("length", "chunked", "close"):
        for size in (0, 1, 64 * KiB, 8 * MiB):
            resp = c.get(f"/{framing}/{size}", timeout=60)
            what = f"{framing} body of {size} bytes"
            assert resp.status == 200, what
            assert resp.complete, what
            assert len(resp.body) == size, what
            assert sha256(resp.body) == sha256(pattern_bytes(size, seed=size)), what
            # levee frames the body itself for an HTTP/1.1 client, even when
            # the backend closed to end it: the client connection stays open.
            assert resp.framing in ("length", "chunked"), f"{what}: {resp!r}"


def test_close_delimited_response_is_sent_chunked_to_http11_client(h):
    body = pattern_bytes(100 * KiB, seed=7)

    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\n\r\n" + body)
        conn.shutdown_write()
        conn.wait_peer_close(5)

    b = h.scripted(handler, id="closer")
    lv = h.levee(one_backend(b))
    c = lv.client()

    resp = c.get("/")

    assert resp.status == 200 and resp.complete
    assert resp.framing == "chunked", resp
    assert resp.body == body
    follow = c.get("/again")
    assert follow.status == 200 and follow.body == body


# --------------------------------------------------------------------------
# 256 MiB both ways with bounded memory


# Memory bound while 256 MiB stream through levee. The margin is generous for
# ASan: freed blocks sit in its quarantine (capped here at 16 MiB by
# quarantine_size_mb=16) and its shadow memory adds 1/8 of what is touched. A
# levee that buffers a whole body, or reads faster than the other side drains
# (no back-pressure), grows by hundreds of MiB: the receiving side pauses for 2 s
# after the first MiB so that missing back-pressure shows.
RSS_MARGIN = 64 * MiB
BIG = 256 * MiB
BLOCK = pattern_bytes(MiB, seed=99)


class RssSampler:
    def __init__(self, lv):
        self.lv = lv
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.lv.rss_bytes())
            except OSError:
                return
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def big_digest():
    d = hashlib.sha256()
    for _ in range(BIG // MiB):
        d.update(BLOCK)
    return d.hexdigest()


def test_256MiB_upload_streams_with_bounded_memory(h):
    def handler(conn):
        while True:
            req = conn.read_request(body=False)
            if req is None:
                return
            paused = [False]

            def slow_start(piece):
                if not paused[0] and req.body_length >= MiB:
                    paused[0] = True
                    time.sleep(2)

            conn.read_body(req, time.monotonic() + 120,
                           sink=slow_start if req.path == "/big" else None)
            conn.respond_json({"length": req.body_length, "sha256": req.body_sha256})

    b = h.scripted(handler, id="sink")
    lv = h.levee(one_backend(b) + """
        limits:
          max_body: 512MiB
    """, extra_asan="quarantine_size_mb=16")
    c = lv.client(timeout=120)
    warm = c.request("POST", "/warm", body=pattern_bytes(4 * MiB, seed=1))
    assert warm.status == 200
    baseline = lv.rss_bytes()

    with RssSampler(lv) as rss:
        c.send(build_request("POST", "/big", [("Content-Length", str(BIG))]))
        for _ in range(BIG // MiB):
            c.send(BLOCK)
        resp = c.read_response(timeout=120)

    assert resp.status == 200, resp
    assert resp.json() == {"length": BIG, "sha256": big_digest()}
    growth = rss.peak - baseline
    print(f"levee RSS: baseline {baseline / MiB:.1f} MiB, peak {rss.peak / MiB:.1f} MiB")
    assert growth < RSS_MARGIN, f"levee's RSS grew by {growth / MiB:.1f} MiB during a 256 MiB upload"


def test_256MiB_download_streams_with_bounded_memory(h):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            size = BIG if req.path == "/big" else 4 * MiB
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // MiB):
                conn.send(BLOCK)

    b = h.scripted(handler, id="source")
    lv = h.levee(one_backend(b), extra_asan="quarantine_size_mb=16")
    c = lv.client(timeout=120)
    warm = c.get("/warm")
    assert warm.status == 200 and len(warm.body) == 4 * MiB
    baseline = lv.rss_bytes()

    digest = hashlib.sha256()
    state = {"n": 0, "paused": False}

    def slow_reader(piece):
        digest.update(piece)
        state["n"] += len(piece)
        if not state["paused"] and state["n"] >= MiB:
            state["paused"] = True
            time.sleep(2)

    with RssSampler(lv) as rss:
        c.send(build_request("GET", "/big"))
        resp = c.read_response(timeout=120, sink=slow_reader)

    assert resp.status == 200, resp
    assert resp.complete and resp.body_length == BIG == state["n"]
    assert digest.hexdigest() == big_digest()
    growth = rss.peak - baseline
    print(f"levee RSS: baseline {baseline / MiB:.1f} MiB, peak {rss.peak / MiB:.1f} MiB")
    assert growth < RSS_MARGIN, f"levee's RSS grew by {growth / MiB:.1f} MiB during a 256 MiB download"


# --------------------------------------------------------------------------
# HTTP/1.0 clients


def test_http10_client_without_keepalive_gets_unchunked_body_then_close(h):
    body = pattern_bytes(10000, seed=3)

    def respond(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk_encode(body, 999))

    b = h.scripted(serve(respond), id="chunky")
    lv = h.levee(one_backend(b))
    c = lv.client()

    c.send(b"GET /old HTTP/1.0\r\nHost: levee.test\r\n\r\n")
    resp = c.read_response()

    assert resp.status == 200
    assert "transfer-encoding" not in resp.headers.names(), "an HTTP/1.0 client cannot read chunked"
    assert resp.body == body and resp.complete
    assert c.wait_closed(10) == "eof", "without keep-alive levee closes an HTTP/1.0 connection"


def test_http10_client_with_keepalive_keeps_the_connection(h):
    b = h.scripted(serve(lambda conn, req: conn.respond(200, f"hello {req.path}")), id="plain")
    lv = h.levee(one_backend(b))
    c = lv.client()

    c.send(b"GET /one HTTP/1.0\r\nHost: levee.test\r\nConnection: keep-alive\r\n\r\n")
    first = c.read_response()

    assert first.status == 200 and first.body == b"hello /one"
    assert first.framing == "length", "a kept-alive HTTP/1.0 response needs a Content-Length"
    assert "keep-alive" in first.headers.tokens("connection"), (
        "an HTTP/1.0 client only keeps the connection if the response says keep-alive")
    c.send(b"GET /two HTTP/1.0\r\nHost: levee.test\r\n\r\n")
    second = c.read_response()
    assert second.status == 200 and second.body == b"hello /two"
    assert c.wait_closed(10) == "eof", "the second request did not ask for keep-alive"


# --------------------------------------------------------------------------
# pipelining and keep-alive


def test_pipelined_requests_are_answered_in_order(h):
    def respond(conn, req):
        if req.path == "/p1":
            time.sleep(0.3)  # the first answer is the slowest
        conn.respond(200, req.path.encode() + b":" + req.body)

    b = h.scripted(serve(respond), id="pipe")
    lv = h.levee(one_backend(b))
    c = lv.client()

    c.send(build_request("GET", "/p1")
           + build_request("POST", "/p2", body=b"hello")
           + build_request("GET", "/p3"))
    bodies = [c.read_response().body for _ in range(3)]

    assert bodies == [b"/p1:", b"/p2:hello", b"/p3:"]
    assert c.is_open_after(0.2)


def test_client_connection_is_kept_alive_across_requests(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    c = lv.client()

    for i in range(10):
        resp = c.get(f"/k/{i}")
        assert resp.status == 200 and resp.json()["target"] == f"/k/{i}"
        assert "close" not in resp.headers.tokens("connection"), f"request {i}: {resp!r}"
        assert not c.reader.eof, f"levee closed the client connection after request {i}"


def test_client_connection_close_is_honoured(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    c = lv.client()

    resp = c.get("/last", [("Connection", "close")])

    assert resp.status == 200 and resp.json()["target"] == "/last"
    assert c.wait_closed(10) == "eof"


def test_backend_connections_are_reused(h):
    demo = h.demo("demo1")
    lv = h.levee(f"""
        workers: 1
        backends:
          - id: demo1
            url: {demo.url}
    """)
    before = demo.stats()

    c = lv.client()
    for i in range(50):
        assert c.get(f"/echo?i={i}").status == 200
    c.close()
    for i in range(50):
        assert lv.get(f"/echo?j={i}").status == 200  # a new client connection each time

    after = demo.stats()
    # /stats itself came on one new connection (counted in `after`)
    opened_by_levee = after["connections_accepted"] - before["connections_accepted"] - 1
    assert after["requests"] - before["requests"] >= 100
    assert 1 <= opened_by_levee <= 3, (
        f"levee opened {opened_by_levee} backend connections for 100 sequential requests "
        "(one worker): its pool should reuse them")


# --------------------------------------------------------------------------
# bodiless responses


@pytest.mark.parametrize("case", ["HEAD", "204", "304"])
def test_bodiless_responses_carry_no_body(h, case):
    def respond(conn, req):
        if req.path == "/after":
            conn.respond(200, b"after")
        elif case == "HEAD":
            conn.respond(200, b"x" * 1000, head=True)  # Content-Length: 1000, no body
        elif case == "204":
            conn.send(b"HTTP/1.1 204 No Content\r\nX-Case: 204\r\n\r\n")
        else:
            conn.send(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1000\r\n\r\n')

    b = h.scripted(serve(respond), id="bodiless")
    lv = h.levee(one_backend(b))
    c = lv.client()

    method = "HEAD" if case == "HEAD" else "GET"
    resp = c.request(method, "/thing", [("If-None-Match", '"v1"')] if case == "304" else None,
                     timeout=10)

    assert resp.status == {"HEAD": 200, "204": 204, "304": 304}[case]
    assert "transfer-encoding" not in resp.headers.names() or case == "HEAD"
    # Any body byte levee sent would be read as the start of the next response.
    after = c.get("/after", timeout=10)
    assert after.status == 200 and after.body == b"after", after


# --------------------------------------------------------------------------
# 1xx


def test_103_early_hints_are_forwarded_before_the_final_response(h):
    def respond(conn, req):
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        time.sleep(0.1)
        conn.respond(200, b"final")

    b = h.scripted(serve(respond), id="hints")
    lv = h.levee(one_backend(b))

    resp = lv.client().get("/page")

    assert [r.status for r in resp.interim] == [103]
    assert resp.interim[0].headers.get("link") == "</style.css>; rel=preload"
    assert resp.status == 200 and resp.body == b"final"


def test_expect_100_continue_is_answered_by_levee(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    c = lv.client()
    body = b"the body after 100"

    c.send(build_request("POST", "/upload", [("Expect", "100-continue"),
                                             ("Content-Length", str(len(body)))]))
    interim = c.read_head(timeout=10)  # no body sent yet: levee must speak first
    assert interim.status == 100, interim
    c.send(body)
    resp = c.read_response()

    assert resp.status == 200
    [seen] = b.wait_requests(1)
    assert "expect" not in seen.headers.names(), "levee answers Expect itself and drops it"
    assert seen.body_sha256 == sha256(body)


def test_backend_100_continue_is_not_forwarded(h):
    def respond(conn, req):
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n")
        conn.respond(200, b"final")

    b = h.scripted(serve(respond), id="hints")
    lv = h.levee(one_backend(b))

    resp = lv.client().get("/page")  # no Expect: a 100 would be unsolicited

    assert [r.status for r in resp.interim] == [103]
    assert resp.status == 200 and resp.body == b"final"


def test_1xx_is_not_sent_to_an_http10_client(h):
    def respond(conn, req):
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        conn.respond(200, b"final")

    b = h.scripted(serve(respond), id="hints")
    lv = h.levee(one_backend(b))
    c = lv.client()

    c.send(b"GET /page HTTP/1.0\r\nHost: levee.test\r\n\r\n")
    resp = c.read_response()

    assert resp.interim == [] and resp.status == 200 and resp.body == b"final"


# --------------------------------------------------------------------------
# more framing and connection handling


def test_chunked_request_with_extensions_and_trailers(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))
    c = lv.client()

    c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")])
           + b"5;name=value\r\nhello\r\n"
           + b"6\r\n world\r\n"
           + b"0\r\nX-Checksum: abc\r\n\r\n")
    resp = c.read_response()

    assert resp.status == 200
    assert resp.json()["body_sha256"] == sha256(b"hello world")
    assert c.get("/next").json()["target"] == "/next", "the request after the trailers is parsed"


def test_backend_closing_idle_keepalive_connections_is_transparent(h):
    """A backend that closes every connection after one response, without
    saying so: levee must not hand the client an error for a pooled connection
    that died while idle (it notices the close, or retries once)."""
    def one_shot(conn):
        req = conn.read_request()
        if req is not None:
            conn.respond(200, f"served {req.path}")

    b = h.scripted(one_shot, id="oneshot")
    lv = h.levee(one_backend(b))
    c = lv.client()

    for i in range(5):
        resp = c.get(f"/r{i}")
        assert (resp.status, resp.body) == (200, f"served /r{i}".encode()), resp
    assert b.connections >= 5


def test_two_workers_serve_concurrent_clients(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        workers: 2
        backends:
          - id: echo
            url: {b.url}
    """)
    clients = [lv.client() for _ in range(8)]

    for round_ in range(5):
        for i, c in enumerate(clients):
            c.send(build_request("GET", f"/w/{i}/{round_}"))
        for i, c in enumerate(clients):
            resp = c.read_response()
            assert resp.status == 200 and resp.json()["target"] == f"/w/{i}/{round_}"
