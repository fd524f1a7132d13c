"""95 — memory held for input that comes in tiny pieces (issue 11, findings 2
and 5).

A request body trickled one byte per write used to keep a 32 KiB read buffer
alive per byte while levee held the body for a retry; the same for one-byte
chunks with long chunk extensions, for a backend trickling one-byte chunks to
a client that does not read, and for every interim (1xx) response a backend
streams to such a client. Each scenario here is the attack; the assertions
are on memory levee holds (its `levee_buffer_bytes` gauge and its RSS from
/proc), then on what the peers received.

The trickles pace their writes (a millisecond between rounds): that is the
shape of the attack, one write per read at levee, not a wait for something
to happen; every assertion holds whatever the pace."""

import json
import select
import socket
import threading
import time

from adminutil import scrape
from harness import error_body, wait_for
from rawhttp import build_request, pattern_bytes, sha256
from scripted import echo_handler

KiB = 1024
MiB = 1024 * KiB
BUF = 32 * KiB  # LV_BUF_SIZE: one read buffer

CONNS = 20
BODY = 3000  # bytes per connection, one per write


# A client that does not read, with the smallest socket buffers it can ask
# for, so that what levee sends it fills the kernel's buffers soon and waits
# in levee's own write queue.
SLOW_READER = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096), (socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)]


def one_backend(b, extra=""):
    return f"""
        backends:
          - id: {b.id}
            url: {b.url}
    """ + extra


def buffer_bytes(lv):
    m = scrape(lv)
    assert m.type("levee_buffer_bytes") == "gauge"
    return m.get("levee_buffer_bytes")


class HoldingBackend:
    """Reads each request with its body as it comes, then holds the response
    until released: levee keeps the body for a retry all along (the default
    retry policy) and cannot let go of it."""

    def __init__(self, h, id="holder"):
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.complete = []
        self.backend = h.scripted(self.handle, id=id)
        self.id, self.url = id, self.backend.url

    def handle(self, conn):
        while True:  # keep-alive: levee may reuse the warm-up's connection
            req = conn.read_request(timeout=120)
            if req is None:
                return
            with self.lock:
                self.complete.append(req)
            self.release.wait(120)
            conn.respond_json({"length": req.body_length, "sha256": req.body_sha256})


def trickle(clients, pieces):
    """Writes pieces[i] on every client in turn, one write each."""
    for piece in pieces:
        for c in clients:
            c.send(piece)
        time.sleep(0.001)  # the attack's pace (see the module docstring)


def run_trickle(h, head_of, pieces, body):
    """CONNS clients trickle `pieces` (which make `body`) to a holding
    backend; returns (buffer bytes, RSS growth) once every byte has reached
    the backend and levee still holds every body."""
    hold = HoldingBackend(h)
    lv = h.levee(one_backend(hold), extra_asan="quarantine_size_mb=16")
    # A first request warms the pools and the allocator.
    warm = lv.client()
    hold.release.set()
    assert warm.request("POST", "/warm", body=pattern_bytes(BODY)).status == 200
    wait_for(lambda: len(hold.complete) == 1, what="the warm-up request")
    hold.release.clear()
    with hold.lock:
        hold.complete.clear()
    rss0, held0 = lv.rss_bytes(), buffer_bytes(lv)

    clients = [lv.client(timeout=120) for _ in range(CONNS)]
    for c in clients:
        c.send(head_of(c))
    trickle(clients, pieces)
    wait_for(lambda: len(hold.complete) == CONNS, timeout=120, what="every body at the backend")
    held, rss = buffer_bytes(lv) - held0, lv.rss_bytes() - rss0
    print(f"{CONNS} x {len(body)} bytes trickled: levee_buffer_bytes +{held / KiB:.0f} KiB, "
          f"RSS +{rss / MiB:.1f} MiB")

    hold.release.set()
    for c in clients:
        resp = c.read_response(timeout=60)
        assert resp.status == 200, resp
        assert resp.json() == {"length": len(body), "sha256": sha256(body)}
    return held, rss


def assert_bounded(held, rss, body_len):
    # Per connection, levee holds its request head (a 32 KiB buffer) and the
    # body it keeps for a retry: at most a constant and twice the body. The
    # old code held a 32 KiB buffer per byte (20 x 3000 x 32 KiB = 1.9 GB).
    assert held <= CONNS * (2 * BUF + 2 * body_len), (
        f"levee holds {held} bytes of buffers for {CONNS * body_len} bytes received")
    assert rss < 48 * MiB, f"levee's RSS grew by {rss / MiB:.1f} MiB for {CONNS * body_len} bytes"


def test_trickled_content_length_bodies_hold_about_their_size(h):
    body = pattern_bytes(BODY, seed=5)

    def head_of(c):
        return build_request("PUT", "/trickle", [("Content-Length", str(BODY))])

    held, rss = run_trickle(h, head_of, [body[i:i + 1] for i in range(BODY)], body)
    assert_bounded(held, rss, BODY)


def test_trickled_one_byte_chunks_with_long_extensions_hold_about_their_size(h):
    body = pattern_bytes(BODY, seed=6)
    ext = b";e=" + b"x" * 2000  # under the 4 KiB cap: accepted, parsed, dropped

    def head_of(c):
        return build_request("PUT", "/trickle", [("Transfer-Encoding", "chunked")])

    pieces = [b"1" + ext + b"\r\n" + body[i:i + 1] + b"\r\n" for i in range(BODY)]
    pieces[-1] += b"0\r\n\r\n"
    held, rss = run_trickle(h, head_of, pieces, body)
    assert_bounded(held, rss, BODY)


# --------------------------------------------------------------------------
# chunk extensions


def test_chunk_extensions_are_capped_at_4KiB_per_chunk(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(one_backend(b))

    # (a quoted first value: llhttp 8.1 refuses an extension after an unquoted one)
    ok = lv.client()
    ok.send(build_request("POST", "/ext", [("Transfer-Encoding", "chunked")])
            + b'5;a="' + b"v" * 2000 + b'";b=' + b"w" * 2000 + b"\r\nhello\r\n"
            + b"6;a=" + b"v" * 4000 + b"\r\n world\r\n0\r\n\r\n")
    resp = ok.read_response()
    assert resp.status == 200, resp
    assert resp.json()["body_sha256"] == sha256(b"hello world")

    bad = lv.client()
    bad.send(build_request("POST", "/ext", [("Transfer-Encoding", "chunked")])
             + b'5;a="' + b"v" * 3000 + b'";b=' + b"w" * 1200 + b"\r\nhello\r\n0\r\n\r\n")
    resp = bad.read_response()
    assert resp.status == 400, resp
    assert error_body(resp)["error"] == "bad_request"


def test_chunk_extensions_over_the_cap_in_a_response_cut_it_as_a_bad_response(h):
    def respond(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n5;x=" + b"y" * 5000 + b"\r\nworld\r\n0\r\n\r\n")
        conn.hang()

    b = h.scripted(respond, id="ext")
    lv = h.levee(one_backend(b), access_log_format="json")
    c = lv.client()

    resp = c.get("/")

    # The head is out when the chunk comes: the response can only be cut.
    assert resp.status == 200 and not resp.complete and resp.body == b"hello", resp
    assert c.reader.eof
    entry = json.loads(lv.access_log_lines(1)[-1])
    assert (entry["status"], entry["reason"]) == (200, "bad_response"), entry


# --------------------------------------------------------------------------
# a backend trickling a response to a client that does not read


def test_one_byte_response_chunks_to_a_client_that_does_not_read_stay_bounded(h):
    """Once the kernel's buffers toward the client are full, each chunk (its
    own read at levee) waited in the client's write queue holding its 32 KiB
    read buffer, until 256 KiB of bytes waited: 43,000 chunks, 1.4 GB."""
    size, nchunks = 1, 20000
    body = pattern_bytes(size * nchunks, seed=7)
    sent, stuck = threading.Event(), threading.Event()

    def trickler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.sock.setblocking(False)
        for i in range(nchunks + 1):
            piece = (b"%x\r\n%s\r\n" % (size, body[i * size:(i + 1) * size]) if i < nchunks
                     else b"0\r\n\r\n")
            while piece:
                try:
                    piece = piece[conn.sock.send(piece):]
                except BlockingIOError:
                    stuck.set()  # levee stopped reading this backend
                    select.select([], [conn.sock], [], 120)
            if i % 2 == 1:
                time.sleep(0.001)  # the attack's pace (see the module docstring)
        sent.set()
        conn.hang()

    b = h.scripted(trickler, id="trickler")
    lv = h.levee(one_backend(b), extra_asan="quarantine_size_mb=16")
    assert lv.get("/health").status == 200
    rss0, held0 = lv.rss_bytes(), buffer_bytes(lv)

    c = lv.client(timeout=120, sockopts=SLOW_READER)
    c.send(build_request("GET", "/slow"))
    wait_for(lambda: sent.is_set() or stuck.is_set(), timeout=120,
             what="the backend to send it all, or levee to stop reading it")
    held, rss = buffer_bytes(lv) - held0, lv.rss_bytes() - rss0
    print(f"{nchunks} chunks of {size} bytes to a client that does not read "
          f"({'levee stopped reading' if stuck.is_set() else 'all sent'}): "
          f"levee_buffer_bytes +{held / KiB:.0f} KiB, RSS +{rss / MiB:.1f} MiB")

    # levee stops reading the backend once 256 KiB worth of memory waits for
    # the client; the old code held a 32 KiB buffer per chunk until then.
    assert held <= 1 * MiB, f"levee holds {held} bytes of buffers for a slow client"
    assert rss < 32 * MiB, f"levee's RSS grew by {rss / MiB:.1f} MiB"
    resp = c.read_response(timeout=120)
    assert resp.status == 200 and resp.complete, resp
    assert resp.body_length == len(body) and resp.body == body


# --------------------------------------------------------------------------
# interim responses (finding 5)


HINT = (b"HTTP/1.1 103 Early Hints\r\nLink: </" + b"a" * 1000 + b".css>; rel=preload\r\n\r\n")


def test_flood_of_103_to_a_client_that_does_not_read_is_cut_short(h):
    flooded = []

    def flood(conn):
        conn.read_request()
        flooded.append(conn)
        try:
            for _ in range(10000):  # 10 MB of hints: far beyond socket buffers
                conn.sock.sendall(HINT)
        except OSError:
            pass  # levee gave up on this connection
        conn.hang()  # and never a final response

    b = h.scripted(flood, id="flood")
    lv = h.levee(one_backend(b, """
        timeouts:
          per_try: 3s
          backend: 10s
    """), access_log_format="json", extra_asan="quarantine_size_mb=16")
    assert lv.get("/health").status == 200
    rss0 = lv.rss_bytes()

    c = lv.client(timeout=60, sockopts=SLOW_READER)
    c.send(build_request("GET", "/page"))
    line = lv.access_log_lines(2, timeout=60)[-1]  # after /health: the exchange is over
    rss = lv.rss_bytes() - rss0
    print(f"103 flood to a client that does not read: RSS +{rss / MiB:.1f} MiB")
    assert rss < 32 * MiB, f"levee's RSS grew by {rss / MiB:.1f} MiB"

    entry = json.loads(line)
    assert (entry["status"], entry["reason"]) == (502, "bad_response"), entry
    resp = c.read_response(timeout=30)
    assert resp.status == 502 and error_body(resp)["error"] == "bad_response", resp
    # each attempt relays 16 hints, then its 17th is one too many
    assert len(resp.interim) == 16 * entry["attempts"] == 16 * len(flooded), (
        len(resp.interim), entry["attempts"], len(flooded))
    assert all(r.status == 103 for r in resp.interim)


def hints_then_ok(n):
    def respond(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.send(HINT * n)
            conn.respond(200, b"final")

    return respond


def test_sixteen_interim_responses_are_relayed(h):
    b = h.scripted(hints_then_ok(16), id="hints")
    lv = h.levee(one_backend(b))

    resp = lv.client().get("/page")

    assert resp.status == 200 and resp.body == b"final", resp
    assert [r.status for r in resp.interim] == [103] * 16


def test_a_seventeenth_interim_response_is_a_bad_response(h):
    b = h.scripted(hints_then_ok(17), id="hints")
    lv = h.levee(one_backend(b, """
        retry:
          max_attempts: 1
    """))

    resp = lv.client().get("/page")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "bad_response"
    assert len(resp.interim) == 16


def test_interim_responses_over_64KiB_are_a_bad_response(h):
    big = b"HTTP/1.1 103 Early Hints\r\nLink: </" + b"b" * 20000 + b".css>; rel=preload\r\n\r\n"

    def respond(conn):
        conn.read_request()
        conn.send(big * 4)  # 80 KB in 4 hints: under the count, over the bytes
        conn.respond(200, b"final")

    b = h.scripted(respond, id="big-hints")
    lv = h.levee(one_backend(b, """
        retry:
          max_attempts: 1
    """))

    resp = lv.client().get("/page")

    assert resp.status == 502, resp
    assert error_body(resp)["error"] == "bad_response"
    assert len(resp.interim) == 3
