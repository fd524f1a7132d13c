"""25 — backend failures: 502 connect_failed / backend_reset / bad_response,
503 no_backend, a body cut short after the head was sent; each with its reason
in the access log.

Every backend of a scenario fails the same way, so the tests hold whether or
not levee retries.
"""

import gzip
import time

import pytest

from harness import error_body, parse_combined


def last_log(lv, n):
    """The n-th access log line (1-based), parsed."""
    return parse_combined(lv.access_log_lines(n)[n - 1])


def test_refused_connections_give_502_connect_failed(h):
    p1, p2 = h.closed_port(), h.closed_port()
    lv = h.levee(f"""
        backends:
          - id: gone1
            url: http://127.0.0.1:{p1}
          - id: gone2
            url: http://127.0.0.1:{p2}
    """)

    resp = lv.client().get("/x")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "connect_failed"
    line = last_log(lv, 1)
    assert (line["status"], line["reason"]) == (502, "connect_failed")
    assert line["backend"] in ("gone1", "gone2") and line["attempts"] >= 1


def reset_before_head(conn):
    conn.read_request()
    conn.reset()


def close_before_head(conn):
    conn.read_request()
    conn.close()


def partial_head_then_close(conn):
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.close()


def accept_then_close(conn):
    conn.close()


@pytest.mark.parametrize("behaviour", [reset_before_head, close_before_head,
                                       partial_head_then_close, accept_then_close],
                         ids=lambda f: f.__name__)
def test_backend_dying_before_a_complete_head_gives_502_backend_reset(h, behaviour):
    b = h.scripted(behaviour, id="dying")
    lv = h.levee(f"""
        backends:
          - id: dying
            url: {b.url}
    """)

    resp = lv.client().get("/x")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "backend_reset"
    line = last_log(lv, 1)
    assert (line["status"], line["backend"], line["reason"]) == (502, "dying", "backend_reset")


GZIPPED = gzip.compress(b"hello, compressed world")

MALFORMED = {
    "not_http": b"SMTP ready\r\n\r\n",
    "bad_status_code": b"HTTP/1.1 abc Whatever\r\nContent-Length: 0\r\n\r\n",
    "bad_content_length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "bad_header_line": b"HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 2\r\n\r\nok",
    # issue 11, finding 8: a coding levee would strip the label of (the
    # client got gzip bytes with no word of gzip)
    "gzip_chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                     + b"%x\r\n" % len(GZIPPED) + GZIPPED + b"\r\n0\r\n\r\n"),
    "gzip_alone": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + GZIPPED,
    # framing levee and another reader could take differently
    "empty_transfer_encoding_with_length": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n"
                                            b"Content-Length: 2\r\n\r\nok"),
    "chunked_in_http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "bare_cr_line_end": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rX-A: 1\r\n\r\nok",
    "http_2_0": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("answer", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_response_gives_502_bad_response(h, answer):
    def handler(conn):
        conn.read_request()
        conn.send(answer)
        conn.wait_peer_close(10)

    b = h.scripted(handler, id="garbler")
    lv = h.levee(f"""
        backends:
          - id: garbler
            url: {b.url}
    """)

    resp = lv.client().get("/x")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "bad_response"
    line = last_log(lv, 1)
    assert (line["status"], line["backend"], line["reason"]) == (502, "garbler", "bad_response")


def test_no_backend_configured_gives_503_with_retry_after(h):
    lv = h.levee("""
        backends: []
    """)

    resp = lv.client().get("/x")

    assert resp.status == 503, resp
    assert error_body(resp)["error"] == "no_backend"
    retry_after = resp.headers.get("retry-after")
    assert retry_after is not None and retry_after.strip().isdigit(), resp.headers
    line = last_log(lv, 1)
    assert (line["status"], line["backend"], line["reason"]) == (503, "-", "no_backend")


FULL = 100_000
SENT = 50_000


def length_then_close(conn):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % FULL + b"x" * SENT)
    time.sleep(0.2)
    conn.close()


def length_then_reset(conn):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % FULL + b"x" * SENT)
    time.sleep(0.2)
    conn.reset()


def chunked_then_close(conn):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % SENT
              + b"x" * SENT + b"\r\n")
    time.sleep(0.2)
    conn.close()


@pytest.mark.parametrize("death", [length_then_close, length_then_reset, chunked_then_close],
                         ids=lambda f: f.__name__)
def test_backend_dying_mid_body_truncates_the_client_response(h, death):
    def handler(conn):
        conn.read_request()
        death(conn)

    b = h.scripted(handler, id="quitter")
    lv = h.levee(f"""
        backends:
          - id: quitter
            url: {b.url}
    """)
    c = lv.client()

    resp = c.get("/big", timeout=15)

    assert resp.status == 200
    assert not resp.complete, f"the client must see the body cut short: {resp!r}"
    assert resp.body_length <= SENT
    assert c.reader.eof, "levee closes the client connection"
    line = last_log(lv, 1)
    assert line["status"] == 200 and line["backend"] == "quitter"
    assert line["reason"] != "-", "the access log says why the body was cut"
    assert line["bytes"] < FULL
