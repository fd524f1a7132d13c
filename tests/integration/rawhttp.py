"""Raw HTTP/1.x on sockets for levee's integration tests: a buffered reader
with a deadline on every read, head and body parsing (Content-Length, chunked,
close-delimited), request building, and `RawClient`, a client that can send
any bytes and read responses precisely (1xx, truncation, clean EOF vs reset).

Standard library only.
"""

import hashlib
import json
import random
import socket
import time

# Default deadline for anything we wait on. The machine is small, shared and
# noisy and the binaries run under ASan: be generous, never sleep blindly.
DEADLINE = 20.0

# --------------------------------------------------------------------------
# raw HTTP/1.x reading and writing


class ProtocolError(Exception):
    pass


class SockReader:
    """Buffered reads from a socket, each bounded by an absolute deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False  # the peer closed (FIN) or reset
        self.reset = False  # ... and it was a reset

    def fill(self, deadline):
        """Read more bytes into the buffer; False at EOF. TimeoutError at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"deadline passed; buffered {bytes(self.buf[:300])!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout:
            raise TimeoutError(
                f"no data before the deadline; buffered {bytes(self.buf[:300])!r}"
            ) from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.eof = True
            self.reset = True
            return False
        except OSError as e:
            if e.errno in (104, 32, 103):
                self.eof = True
                self.reset = True
                return False
            raise
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_line(self, deadline, limit=1 << 20):
        """One line without its CRLF; None at EOF before a full line."""
        start = 0
        while True:
            at = self.buf.find(b"\n", start)
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[: at + 1]
                return line[:-1] if line.endswith(b"\r") else line
            start = len(self.buf)
            if len(self.buf) > limit:
                raise ProtocolError(f"line longer than {limit} bytes")
            if not self.fill(deadline):
                return None

    def read_exact(self, n, deadline, sink=None):
        """Up to n bytes (fewer only at EOF). With `sink`, bytes go there instead."""
        parts = []
        got = 0
        while got < n:
            if not self.buf and not self.fill(deadline):
                break
            take = min(n - got, len(self.buf))
            piece = bytes(self.buf[:take])
            del self.buf[:take]
            got += take
            if sink is not None:
                sink(piece)
            else:
                parts.append(piece)
        return got if sink is not None else b"".join(parts)

    def read_to_eof(self, deadline, sink=None):
        parts = []
        total = 0
        while True:
            if self.buf:
                piece = bytes(self.buf)
                self.buf.clear()
                total += len(piece)
                if sink is not None:
                    sink(piece)
                else:
                    parts.append(piece)
            if not self.fill(deadline):
                break
        return total if sink is not None else b"".join(parts)


class Headers:
    """An ordered list of (name, value); lookups are case-insensitive."""

    def __init__(self, items=None):
        self.items = list(items or [])

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.items:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.items if k.lower() == name]

    def names(self):
        return [k.lower() for k, _v in self.items]

    def __contains__(self, name):
        return self.get(name) is not None

    def tokens(self, name):
        """Comma-separated tokens of every `name` header, lower-cased."""
        out = []
        for v in self.get_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return f"Headers({self.items!r})"


def parse_header_lines(reader, deadline, what):
    items = []
    while True:
        line = reader.read_line(deadline)
        if line is None:
            raise ProtocolError(f"EOF inside the {what} head")
        if line == b"":
            return Headers(items)
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"bad header line in the {what}: {line!r}")
        items.append((name.decode("latin-1"), value.strip().decode("latin-1")))


def read_chunked(reader, deadline, sink):
    """Returns (body, complete, trailers)."""
    parts = []
    while True:
        line = reader.read_line(deadline)
        if line is None:
            return b"".join(parts), False, Headers()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {line!r}") from None
        if size == 0:
            trailers = []
            while True:
                t = reader.read_line(deadline)
                if t is None:
                    return b"".join(parts), False, Headers(trailers)
                if t == b"":
                    return b"".join(parts), True, Headers(trailers)
                n, _, v = t.partition(b":")
                trailers.append((n.decode("latin-1"), v.strip().decode("latin-1")))
        if sink is not None:
            got = reader.read_exact(size, deadline, sink)
        else:
            data = reader.read_exact(size, deadline)
            got = len(data)
            parts.append(data)
        if got < size:
            return b"".join(parts), False, Headers()
        crlf = reader.read_line(deadline)
        if crlf is None:
            return b"".join(parts), False, Headers()
        if crlf != b"":
            raise ProtocolError(f"chunk not followed by CRLF: {crlf!r}")


def framing_of(headers):
    """('chunked'|'length'|None, length) from a head's framing headers."""
    te = headers.tokens("transfer-encoding")
    if te:
        return ("chunked" if te[-1] == "chunked" else None), None
    cl = headers.get("content-length")
    if cl is not None:
        return "length", int(cl)
    return None, None


class HttpResponse:
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = b""
        self.body_length = 0
        self.complete = True  # False: the connection ended before the framing said
        self.framing = None  # 'length' | 'chunked' | 'close' | 'none'
        self.trailers = Headers()
        self.interim = []  # 1xx responses received before this one
        self.received_at = None  # time.monotonic() when the status line arrived

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (
            f"<HttpResponse {self.status} {self.reason!r} framing={self.framing} "
            f"len={self.body_length} complete={self.complete} headers={self.headers.items!r} "
            f"body={self.body[:200]!r}>"
        )


class HttpRequest:
    def __init__(self, method, target, version, headers, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.raw_head = raw_head
        self.body = b""
        self.body_length = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.complete = True
        self.framing = None
        self.received_at = None  # time.monotonic() when a ScriptedBackend had its head

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    def __repr__(self):
        return f"<HttpRequest {self.method} {self.target} {self.version} {self.headers.items!r}>"


def build_request(method, target, headers=None, body=None, version="HTTP/1.1",
                  host=None, chunked=False, chunk_size=16384):
    """Bytes of one request. `headers` is a list of pairs or a dict; a Host header
    is added unless present (pass host=False to send none)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in items}
    if host is not False and "host" not in names:
        items.insert(0, ("Host", host or "levee.test"))
    if body is not None and chunked:
        items.append(("Transfer-Encoding", "chunked"))
    elif body is not None and "content-length" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    out = head.encode("latin-1")
    if body is not None:
        out += chunk_encode(body, chunk_size) if chunked else body
    return out


def chunk_encode(body, chunk_size=16384):
    parts = []
    for i in range(0, len(body), chunk_size):
        piece = body[i:i + chunk_size]
        parts.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern_bytes(n, seed=0):
    """n reproducible pseudo-random bytes."""
    rng = random.Random(seed)
    return rng.randbytes(n)


class RawClient:
    """A raw HTTP/1.x client on one TCP connection, every read with a deadline."""

    def __init__(self, port, host="127.0.0.1", source_ip=None, timeout=DEADLINE, sockopts=()):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for level, name, value in sockopts:  # before connect (SO_RCVBUF, TCP_MAXSEG...)
            self.sock.setsockopt(level, name, value)
        if source_ip:
            self.sock.bind((source_ip, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SockReader(self.sock)
        self.closed = False

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def try_send(self, data):
        """Send, ignoring a connection that the peer already closed."""
        try:
            self.send(data)
            return True
        except OSError:
            return False

    def request(self, method, target, headers=None, body=None, timeout=None, **kw):
        self.send(build_request(method, target, headers, body, **kw))
        return self.read_response(head=(method == "HEAD"), timeout=timeout)

    def get(self, target, headers=None, **kw):
        return self.request("GET", target, headers, **kw)

    def read_head(self, timeout=None):
        """Read one status line and headers only (e.g. a `100 Continue`)."""
        deadline = self._deadline(timeout)
        line = self.reader.read_line(deadline)
        if line is None:
            raise ProtocolError("connection closed before a status line")
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {line!r}")
        resp = HttpResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "",
                            parse_header_lines(self.reader, deadline, "response"))
        resp.received_at = time.monotonic()
        resp.framing = "none"
        return resp

    def read_response(self, head=False, timeout=None, sink=None):
        """Read one final response (and the 1xx before it).

        The body goes to `sink(bytes)` when given (then .body stays empty).
        Raises TimeoutError if nothing complete arrives before the deadline and
        ProtocolError if the connection closes before a status line.
        """
        deadline = self._deadline(timeout)
        interim = []
        while True:
            line = self.reader.read_line(deadline)
            while line == b"" and not interim:
                line = self.reader.read_line(deadline)  # tolerate a stray CRLF
            if line is None:
                raise ProtocolError(
                    "connection closed before a status line"
                    + (" (reset)" if self.reader.reset else "")
                )
            received_at = time.monotonic()
            parts = line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ProtocolError(f"bad status line {line!r}")
            resp = HttpResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "",
                                parse_header_lines(self.reader, deadline, "response"))
            resp.received_at = received_at
            if 100 <= resp.status < 200 and resp.status != 101:
                resp.framing = "none"
                interim.append(resp)
                continue
            break
        resp.interim = interim
        self._read_body(resp, head, deadline, sink)
        return resp

    def _read_body(self, resp, head, deadline, sink):
        counted = [0]

        def counting_sink(piece):
            counted[0] += len(piece)
            sink(piece)

        use_sink = counting_sink if sink is not None else None
        if head or resp.status in (204, 304) or resp.status < 200:
            resp.framing = "none"
            return
        kind, length = framing_of(resp.headers)
        if kind == "chunked":
            resp.framing = "chunked"
            body, resp.complete, resp.trailers = read_chunked(self.reader, deadline, use_sink)
        elif kind == "length":
            resp.framing = "length"
            body = self.reader.read_exact(length, deadline, use_sink)
            if use_sink is not None:
                body = b""
            resp.complete = (counted[0] if use_sink else len(body)) == length
        else:
            resp.framing = "close"
            body = self.reader.read_to_eof(deadline, use_sink)
            if use_sink is not None:
                body = b""
            resp.complete = not self.reader.reset
        resp.body = body
        resp.body_length = counted[0] if use_sink else len(body)

    def wait_closed(self, timeout=None):
        """Wait for the peer to close: 'eof' (clean FIN), 'reset', or 'data' if
        more bytes arrived instead. TimeoutError if it stays open."""
        deadline = self._deadline(timeout)
        if self.reader.buf:
            return "data"
        if self.reader.eof:
            return "reset" if self.reader.reset else "eof"
        if self.reader.fill(deadline):
            return "data"
        return "reset" if self.reader.reset else "eof"

    def is_open_after(self, seconds):
        """True if the connection is still open (no EOF, no data) after `seconds`."""
        try:
            self.wait_closed(timeout=seconds)
        except TimeoutError:
            return True
        return False

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


def http_get(port, target, headers=None, timeout=DEADLINE, host="127.0.0.1"):
    """One GET on a fresh connection with `Connection: close`; returns HttpResponse."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    hdrs.append(("Connection", "close"))
    c = RawClient(port, host=host, timeout=timeout)
    try:
        return c.request("GET", target, hdrs)
    finally:
        c.close()
