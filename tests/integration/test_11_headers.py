"""11 — headers: X-Forwarded-*, X-Real-IP and Host at the backend; hop-by-hop
headers (and those named in Connection) removed in both directions."""

import pytest

from harness import client_ip, echo_handler, serve


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
