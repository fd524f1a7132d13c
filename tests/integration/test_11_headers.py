"""11 — headers: X-Forwarded-*, X-Real-IP and Host at the backend; hop-by-hop
headers (and those named in Connection) removed in both directions."""

import pytest

from harness import build_request, client_ip, echo_handler, serve


def echo_setup(h):
    """A backend that records requests, levee in front of it, a client from
    client_ip()."""
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
    """)
    return b, lv, lv.client(source_ip=client_ip())


def seen_by_backend(h, headers, host="app.example.test"):
    b, lv, c = echo_setup(h)
    resp = c.get("/h", [("Host", host)] + headers)
    assert resp.status == 200, resp
    [req] = b.wait_requests(1)
    return req.headers


def test_x_forwarded_for_is_the_client_ip_when_absent(h):
    seen = seen_by_backend(h, [])

    assert seen.get_all("x-forwarded-for") == [client_ip()]


@pytest.mark.parametrize("incoming", ["203.0.113.7", "203.0.113.7, 198.51.100.2"])
def test_x_forwarded_for_is_appended_to(h, incoming):
    seen = seen_by_backend(h, [("X-Forwarded-For", incoming)])

    assert seen.get_all("x-forwarded-for") == [f"{incoming}, {client_ip()}"]


def test_forwarding_headers_describe_the_client_connection(h):
    seen = seen_by_backend(h, [], host="app.example.test:8443")

    assert seen.get_all("x-forwarded-proto") == ["http"]
    assert seen.get_all("x-forwarded-host") == ["app.example.test:8443"]
    assert seen.get_all("x-real-ip") == [client_ip()]


def test_client_supplied_forwarding_headers_are_replaced(h):
    seen = seen_by_backend(h, [("X-Real-IP", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
                               ("X-Forwarded-Host", "evil.example")])

    assert seen.get_all("x-real-ip") == [client_ip()]
    assert seen.get_all("x-forwarded-proto") == ["http"]
    assert seen.get_all("x-forwarded-host") == ["app.example.test"]


def test_host_is_kept_as_the_client_sent_it(h):
    seen = seen_by_backend(h, [], host="Service.Example.TEST:1234")

    assert seen.get_all("host") == ["Service.Example.TEST:1234"]


def test_end_to_end_request_headers_are_kept_in_order(h):
    sent = [("User-Agent", "levee-test/1.0"), ("Accept", "text/html, */*;q=0.1"),
            ("X-Dup", "first"), ("X-Custom", "a value  with  spaces"), ("X-Dup", "second"),
            ("Cookie", "a=1; b=2")]

    seen = seen_by_backend(h, sent)

    kept = [(k.lower(), v) for k, v in seen.items
            if k.lower() in {"user-agent", "accept", "x-dup", "x-custom", "cookie"}]
    assert kept == [(k.lower(), v) for k, v in sent]


def test_request_hop_by_hop_headers_are_removed(h):
    seen = seen_by_backend(h, [
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5, max=100"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "h2c"),
        ("X-Secret-Hop", "only for the proxy"),
        ("X-End-To-End", "kept"),
    ])

    names = seen.names()
    for gone in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret-hop"):
        assert gone not in names, f"{gone} reached the backend: {seen!r}"
    assert set(seen.tokens("connection")) <= {"keep-alive", "close"}, seen
    assert seen.get_all("x-end-to-end") == ["kept"]


def test_response_hop_by_hop_headers_are_removed(h):
    def respond(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\n"
                  b"Connection: keep-alive, X-Backend-Hop\r\n"
                  b"Keep-Alive: timeout=5, max=100\r\n"
                  b"X-Backend-Hop: secret\r\n"
                  b"Proxy-Connection: keep-alive\r\n"
                  b"Upgrade: h2c\r\n"
                  b"Trailer: X-Checksum\r\n"
                  b"TE: trailers\r\n"
                  b"X-End: kept\r\n"
                  b"Set-Cookie: a=1\r\n"
                  b"Set-Cookie: b=2\r\n"
                  b"Content-Length: 2\r\n\r\nok")

    b = h.scripted(serve(respond), id="hoppy")
    lv = h.levee(f"""
        backends:
          - id: hoppy
            url: {b.url}
    """)

    resp = lv.client().get("/")

    assert resp.status == 200 and resp.body == b"ok"
    names = resp.headers.names()
    for gone in ("keep-alive", "x-backend-hop", "proxy-connection", "upgrade", "trailer", "te"):
        assert gone not in names, f"{gone} reached the client: {resp.headers!r}"
    assert set(resp.headers.tokens("connection")) <= {"keep-alive", "close"}, resp.headers
    assert resp.headers.get_all("x-end") == ["kept"]
    assert resp.headers.get_all("set-cookie") == ["a=1", "b=2"]


# --- trailers (issue 11, finding 3) -------------------------------------------------

TRAILER_ATTACK = (b"PUT /t HTTP/1.1\r\n"
                  b"Host: good.example\r\n"
                  b"X-Internal-Auth: from-the-client\r\n"
                  b"Transfer-Encoding: chunked\r\n"
                  b"\r\n"
                  b"5\r\nhello\r\n"
                  b"0\r\n"
                  b"X-Internal-Auth: admin\r\n"
                  b"Host: evil.example\r\n"
                  b"Connection: close\r\n"
                  b"\r\n")


def test_request_trailers_never_become_headers_on_a_later_connection(h):
    """The head levee sends is written again on every new backend connection
    (a retry here). The first connection reads the whole request, last
    chunk included, before it closes: levee sends the last chunk only once
    the trailer section is parsed, so the retry's head is written after the
    trailers arrived, every time."""
    def first_closes_then_echo(conn):
        if conn.index == 0:
            conn.read_request()
            conn.close()  # backend_reset: the PUT is retried on a new connection
            return
        echo_handler()(conn)

    b = h.scripted(first_closes_then_echo, id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        headers:
          remove_request: [X-Internal-Auth]
    """)
    c = lv.client()
    c.send(TRAILER_ATTACK)

    resp = c.read_response(timeout=15)

    assert resp.status == 200, resp
    assert b.connections == 2, "the retry went out on a new connection"
    assert len(b.requests) == 2
    for req in b.requests:
        assert "x-internal-auth" not in req.headers, req
        assert req.headers.get_all("host") == ["good.example"], req
        assert "connection" not in req.headers, req
        assert req.body == b"hello"
    # the trailer's "Connection: close" did not close the client connection
    assert c.get("/again", [("Host", "good.example")]).status == 200


def test_response_trailers_are_dropped_and_the_body_is_intact(h):
    def respond(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                  b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 999\r\n\r\n")

    b = h.scripted(serve(respond), id="trailing")
    lv = h.levee(f"""
        backends:
          - id: trailing
            url: {b.url}
    """)
    c = lv.client()
    c.send(build_request("GET", "/1") + build_request("GET", "/2"))

    first, second = c.read_response(timeout=10), c.read_response(timeout=10)

    for resp in (first, second):
        assert resp.status == 200 and resp.body == b"hello" and resp.complete, resp
        assert resp.trailers.items == [], resp.trailers
        assert "x-checksum" not in resp.headers and "content-length" not in resp.headers


# --- Connection naming a framing field (issue 11, finding 6) -------------------------

@pytest.mark.parametrize("connection", ["Content-Length", "close, Content-Length",
                                        "Transfer-Encoding"])
def test_connection_naming_framing_keeps_pipelined_responses_apart(h, connection):
    """The response went out with neither length, chunked nor close on a
    keep-alive connection: the second response was read as its body."""
    chunked = connection == "Transfer-Encoding"

    def respond(conn, req):
        body = req.target.encode() * 3
        framing = (b"Transfer-Encoding: chunked\r\n" if chunked
                   else b"Content-Length: %d\r\n" % len(body))
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body
        conn.send(b"HTTP/1.1 200 OK\r\n" + framing
                  + b"Connection: " + connection.encode() + b"\r\n\r\n" + payload)

    b = h.scripted(serve(respond), id="framer")
    lv = h.levee(f"""
        backends:
          - id: framer
            url: {b.url}
    """)
    c = lv.client()
    c.send(build_request("GET", "/one") + build_request("GET", "/two"))

    first = c.read_response(timeout=10)
    second = c.read_response(timeout=10)

    assert (first.status, first.body) == (200, b"/one/one/one"), first
    assert (second.status, second.body) == (200, b"/two/two/two"), second
    for resp in (first, second):
        assert resp.framing in ("length", "chunked"), resp
    assert c.get("/three").body == b"/three/three/three"


def test_client_connection_naming_content_length_keeps_the_request_framed(h):
    b, lv, c = echo_setup(h)
    c.send(build_request("POST", "/a", [("Connection", "Content-Length")], body=b"12345")
           + build_request("POST", "/b", body=b"678"))

    first, second = c.read_response(timeout=10), c.read_response(timeout=10)

    assert (first.status, first.json()["body_length"]) == (200, 5), first
    assert (second.status, second.json()["body_length"]) == (200, 3), second
    assert [r.target for r in b.requests] == ["/a", "/b"]
    assert b.requests[0].headers.get_all("content-length") == ["5"]
