"""`ScriptedBackend`: an in-process, threaded raw-socket HTTP server for
levee's integration tests. A handler function gets each accepted connection
and may do anything with it: answer properly, send hop-by-hop headers, 1xx,
chunked or close-delimited bodies, garbage, a reset, or nothing at all.

Standard library only.
"""

import hashlib
import http.client
import json
import socket
import struct
import threading
import time

from rawhttp import (
    DEADLINE,
    HttpRequest,
    ProtocolError,
    SockReader,
    framing_of,
    parse_header_lines,
    read_chunked,
)

# --------------------------------------------------------------------------
# scripted backend


KEEP_BODY_MAX = 16 * 1024 * 1024  # bodies up to this size are kept in HttpRequest.body


class BackendConn:
    """One connection accepted by a ScriptedBackend, as seen by its handler."""

    def __init__(self, backend, sock, addr, index):
        self.backend = backend
        self.sock = sock
        self.addr = addr
        self.index = index  # 0 for the first connection the backend accepted
        self.reader = SockReader(sock)
        self.requests = []

    def read_request(self, timeout=DEADLINE, body=True):
        """The next request (with its body unless body=False); None if the peer
        closed before sending one. Records it in backend.requests."""
        deadline = time.monotonic() + timeout
        line = self.reader.read_line(deadline)
        while line == b"":
            line = self.reader.read_line(deadline)
        if line is None:
            return None
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3:
            raise ProtocolError(f"bad request line {line!r}")
        headers = parse_header_lines(self.reader, deadline, "request")
        req = HttpRequest(parts[0], parts[1], parts[2], headers, line)
        req.received_at = time.monotonic()
        if body:
            self.read_body(req, deadline)
        self.requests.append(req)
        self.backend._record(req)
        return req

    def read_body(self, req, deadline=None, sink=None):
        deadline = deadline or time.monotonic() + DEADLINE
        digest = hashlib.sha256()
        parts = []
        keep = self.backend.keep_bodies

        def on_piece(piece):
            digest.update(piece)
            req.body_length += len(piece)
            if sink is not None:
                sink(piece)
            elif keep and req.body_length <= KEEP_BODY_MAX:
                parts.append(piece)

        kind, length = framing_of(req.headers)
        if "transfer-encoding" in req.headers and kind is None:
            raise ProtocolError(f"request with unknown transfer coding {req.headers!r}")
        req.framing = kind or "none"
        if kind == "chunked":
            _body, req.complete, _t = read_chunked(self.reader, deadline, on_piece)
        elif kind == "length":
            got = self.reader.read_exact(length, deadline, on_piece)
            req.complete = got == length
        req.body = b"".join(parts) if req.body_length <= KEEP_BODY_MAX else b""
        req.body_sha256 = digest.hexdigest()
        return req

    def send(self, data):
        self.sock.settimeout(DEADLINE)
        self.sock.sendall(data)

    def respond(self, status=200, body=b"", headers=None, reason=None, head=False):
        """A complete response framed by Content-Length (no body sent if head)."""
        if isinstance(body, str):
            body = body.encode()
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in items):
            items.append(("Content-Length", str(len(body))))
        reason = reason or http.client.responses.get(status, "Status")
        out = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
        self.send(out.encode("latin-1") + b"\r\n" + (b"" if head else body))

    def respond_json(self, obj, status=200, headers=None, head=False):
        hdrs = [("Content-Type", "application/json")] + list(headers or [])
        self.respond(status, json.dumps(obj).encode(), hdrs, head=head)

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Close with RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def hang(self, limit=120.0):
        """Do nothing until the backend is stopped (or `limit` seconds pass)."""
        self.backend.stopping.wait(limit)

    def wait_peer_close(self, timeout=DEADLINE):
        """Read and drop bytes until the peer closes; True if it did in time."""
        deadline = time.monotonic() + timeout
        try:
            while self.reader.fill(deadline):
                self.reader.buf.clear()
        except TimeoutError:
            return False
        return True


def request_summary(req):
    """What echo_handler answers: the request as the backend saw it."""
    return {
        "method": req.method,
        "target": req.target,
        "version": req.version,
        "headers": req.headers.items,
        "body_length": req.body_length,
        "body_sha256": req.body_sha256,
        "framing": req.framing,
    }


def serve(respond):
    """A keep-alive handler: reads requests and calls respond(conn, req) for each,
    until the peer closes or asks `Connection: close`."""

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            respond(conn, req)
            if "close" in req.headers.tokens("connection"):
                return

    return handler


def echo_handler():
    """Answers every request with its summary as JSON (request_summary)."""
    return serve(lambda conn, req: conn.respond_json(request_summary(req),
                                                      head=req.method == "HEAD"))


class ScriptedBackend:
    """A threaded raw-socket server in this process.

    `handler(conn)` runs in its own thread for each accepted connection and may
    do anything with `conn` (see BackendConn); the socket is closed when it
    returns. Every request read through conn.read_request() is recorded in
    `requests` (with its body when it is at most 16 MiB, and always its length
    and sha256); `connections` counts accepted connections.
    """

    def __init__(self, handler, id="scripted", keep_bodies=True):
        self.handler = handler
        self.id = id
        self.keep_bodies = keep_bodies
        self.requests = []
        self.errors = []
        self.connections = 0
        self.stopping = threading.Event()
        self.request_seen = threading.Event()
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"scripted-{id}")
        self._accept_thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def backend_entry(self, **extra):
        return {"id": self.id, "url": self.url, **extra}

    def _record(self, req):
        with self._lock:
            self.requests.append(req)
        self.request_seen.set()

    def wait_requests(self, n, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.1f}s waiting for {n} request(s) "
                                     f"at {self.id} (got {len(self.requests)})")
            time.sleep(0.02)
        return self.requests[:n]

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, addr = self.listener.accept()
            except OSError:
                return
            if self.stopping.is_set():
                sock.close()
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self._socks.append(sock)
            t = threading.Thread(target=self._run, args=(sock, addr, index), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, sock, addr, index):
        conn = BackendConn(self, sock, addr, index)
        try:
            self.handler(conn)
        except Exception as e:  # noqa: BLE001 - recorded for the test to inspect
            if not self.stopping.is_set():
                self.errors.append(e)
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        self._accept_thread.join(5)
