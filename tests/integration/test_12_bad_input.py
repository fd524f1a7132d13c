"""12 — bad input from clients: each 4xx with its reason token, the connection
closed cleanly after it (full response, then EOF), levee still serving."""

import pytest

from harness import build_request, echo_handler, error_body, sha256

def limited_levee(h):
    """An echo backend behind levee with small limits."""
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
        backends:
          - id: echo
            url: {b.url}
        limits:
          max_body: 1KiB
          max_header_size: 4KiB
          max_headers: 20
          max_uri: 1KiB
    """)
    return b, lv


def assert_rejected(lv, data, status, token):
    """Send `data`, expect levee's own `status` with `token`, then a clean EOF."""
    c = lv.client()
    c.send(data)
    resp = c.read_response(timeout=10)
    assert resp.status == status, resp
    body = error_body(resp)
    assert body["error"] == token, body
    assert resp.complete
    assert c.wait_closed(10) == "eof", "after a 4xx for bad input levee closes the connection cleanly"
    return resp


def assert_still_serving(lv, b):
    resp = lv.get("/after")
    assert resp.status == 200, f"levee no longer serves after the bad request: {resp!r}"
    # nothing of the bad request reached the backend
    assert [r.target for r in b.requests] == ["/after"], b.requests


CASES = {
    "garbage": (b"this is not http\r\n\r\n", 400, "bad_request"),
    "header_without_colon": (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "bad_request"),
    "content_length_and_chunked": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_framing"),
    "two_content_lengths": (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhello!", 400, "bad_framing"),
    "transfer_encoding_gzip": (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                               400, "bad_framing"),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                405, "method_not_allowed"),
    "uri_too_long": (build_request("GET", "/" + "a" * 2000), 414, "uri_too_long"),
    "header_too_large": (build_request("GET", "/", [("X-Big", "b" * 5000)]), 431, "headers_too_large"),
    "too_many_headers": (build_request("GET", "/", [(f"X-H{i}", "v") for i in range(30)]),
                         431, "headers_too_large"),
    "content_length_over_max_body": (build_request("POST", "/upload", [("Content-Length", "2048")]),
                                     413, "body_too_large"),
    # issue 11, finding 8: framing
    "chunked_on_http10": (b"POST /upload HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\n\r\n", 400, "bad_framing"),
    "empty_transfer_encoding_with_length": (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n"
                                            b"Content-Length: 5\r\n\r\nhello", 400, "bad_framing"),
    "transfer_encoding_gzip_chunked": (b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                                       b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                                       400, "bad_framing"),
    # versions other than HTTP/1.0 and 1.1
    "http_2_0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    "http_0_9": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    "http_1_2": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    "http_3_0": (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    "h2_preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "version_not_supported"),
    # the target
    "absolute_form_with_userinfo": (b"GET http://u@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
                                    400, "bad_request"),
    "absolute_form_other_scheme": (b"GET ftp://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
                                   400, "bad_request"),
    "asterisk_with_get": (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "non_ascii_target": (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "tab_in_target": (b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    # a CR alone: the rest was parsed as a second request, after the first
    # had been forwarded
    "bare_cr_ends_a_header_line": (b"GET / HTTP/1.1\r\nHost: x\r\n\rSome-Header: y\r\n\r\n",
                                   400, "bad_request"),
    # Host values that are not one authority
    "host_with_userinfo": (b"GET / HTTP/1.1\r\nHost: u@evil.example\r\n\r\n", 400, "bad_request"),
    "host_with_path": (b"GET / HTTP/1.1\r\nHost: good.example/evil\r\n\r\n", 400, "bad_request"),
    "host_empty": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "bad_request"),
    "host_list": (b"GET / HTTP/1.1\r\nHost: good.example, evil.example\r\n\r\n", 400, "bad_request"),
    "host_bad_port": (b"GET / HTTP/1.1\r\nHost: good.example:99999\r\n\r\n", 400, "bad_request"),
    "host_empty_http10": (b"GET / HTTP/1.0\r\nHost: \r\n\r\n", 400, "bad_request"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_is_rejected_with_its_reason(h, case):
    data, status, token = CASES[case]
    b, lv = limited_levee(h)

    assert_rejected(lv, data, status, token)

    assert_still_serving(lv, b)


def test_413_for_content_length_is_sent_before_the_body(h):
    """The head alone announces too much: levee answers at once, without
    waiting for (or reading) a body the client never sends."""
    b, lv = limited_levee(h)

    resp = assert_rejected(lv, build_request("POST", "/upload", [("Content-Length", str(100 << 20))]),
                           413, "body_too_large")

    assert resp.status == 413
    assert b.requests == []


def test_413_for_a_chunked_body_growing_over_max_body(h):
    b, lv = limited_levee(h)
    c = lv.client()
    c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")]))
    for _ in range(4):  # 4 x 512 bytes: over 1 KiB at the third chunk; no last-chunk
        if not c.try_send(b"200\r\n" + b"c" * 512 + b"\r\n"):
            break

    resp = c.read_response(timeout=10)

    assert resp.status == 413
    assert error_body(resp)["error"] == "body_too_large"
    assert c.wait_closed(10) == "eof"
    assert lv.get("/after").status == 200


def test_requests_within_the_limits_pass(h):
    b, lv = limited_levee(h)
    c = lv.client()

    at_limit = b"x" * 1024  # max_body is 1KiB: 1024 bytes are not over it
    resp = c.request("POST", "/upload", body=at_limit)
    assert resp.status == 200 and resp.json()["body_sha256"] == sha256(at_limit)
    resp = c.request("POST", "/upload", body=at_limit, chunked=True, chunk_size=300)
    assert resp.status == 200 and resp.json()["body_length"] == 1024
    long_uri = "/" + "u" * 999  # 1000 bytes, max_uri is 1 KiB
    assert c.get(long_uri).status == 200
    many = [(f"X-H{i}", "v" * 150) for i in range(15)]  # 16 headers, ~2.6 KiB of head
    assert c.get("/many", many).status == 200
    assert len(b.requests) == 4


def test_unusual_but_valid_requests_pass(h):
    """What the stricter checks must not refuse: OPTIONS *, IPv6 and port in
    Host, an HTTP/1.0 request without Host, absolute-form, odd but legal
    reg-name characters, a chunked body in HTTP/1.1."""
    b, lv = limited_levee(h)
    c = lv.client()
    sends = [
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "*"),
        (b"GET /v6 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "/v6"),
        (b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "/ten"),
        (b"GET http://Example.COM:81/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", "/abs?q=1"),
        (b"GET /odd HTTP/1.1\r\nHost: under_score.example.:08080\r\n\r\n", "/odd"),
        (b"PUT /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
         b"2\r\nok\r\n0\r\n\r\n", "/chunk"),
    ]
    for data, target in sends:
        c.send(data)
        resp = c.read_response(timeout=10)
        assert resp.status == 200, (data, resp)
        assert resp.json()["target"] == target, resp.json()
    seen = b.requests
    assert [r.headers.get("host") for r in seen] == ["x", "[::1]:8080", b.url[len("http://"):],
                                                     "Example.COM:81", "under_score.example.:08080",
                                                     "x"]
    assert seen[-1].body == b"ok"
