"""TLS helpers for levee's integration tests (test_16_tls.py).

- `Pki`: a throw-away PKI made with the `openssl` command at test time (a CA,
  server certificates for a.test and b.test, a backend certificate, a client
  certificate for mTLS, and a second, "wrong" CA with its own backend
  certificate). Nothing secret is committed: the keys live in pytest's tmp dir.
- `start_levee()`: the harness's `Levee` with a `listen:` list (a TLS listener
  and a plain one); the harness itself only reads `listen: HOST:PORT`.
- `TlsClient`: the harness's `RawClient` over TLS (SNI, ALPN, versions as asked).
- `TlsBackend`: the harness's `ScriptedBackend` behind a Python `SSLContext`
  (handshake in the connection's thread; SNI, client certificate and session
  reuse recorded per connection).
- `WsEchoBackend`: a `websockets` echo server in a thread.
- small things: `curl()`, `metrics()`, `client_hello()`.

Standard library (and the openssl and curl commands, python3-websockets) only.
"""

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from pathlib import Path

from harness import (
    DEADLINE,
    PORTS,
    BackendConn,
    Levee,
    RawClient,
    ScriptedBackend,
    SockReader,
    http_get,
    port_accepts,
    wait_for,
)

# --------------------------------------------------------------------------
# certificates


def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *map(str, args)], cwd=str(cwd), capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


class Pki:
    """Certificates and keys (ECDSA P-256) in `directory`, made with openssl.

    Attributes are paths: ca, wrong_ca; (cert, key) pairs a, b, backend, client,
    wrong_backend. `issue()` makes more (e.g. a renewed a.test).
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._serial = 1000
        self.ca, self.ca_key = self._make_ca("ca", "levee test CA")
        self.wrong_ca, self.wrong_ca_key = self._make_ca("wrong-ca", "levee wrong CA")
        self.a = self.issue("a", "a.test", ["DNS:a.test", "IP:127.0.0.1"])
        self.b = self.issue("b", "b.test", ["DNS:b.test", "IP:127.0.0.1"])
        # No IP SAN: a backend reached by IP needs tls.server_name.
        self.backend = self.issue("backend", "backend.test", ["DNS:backend.test", "DNS:localhost"])
        self.client = self.issue("client", "levee-client", None, client=True)
        self.wrong_backend = self.issue("wrong-backend", "backend.test",
                                        ["DNS:backend.test", "DNS:localhost"], ca="wrong")

    def _make_ca(self, name, cn):
        key, crt = self.dir / f"{name}.key", self.dir / f"{name}.crt"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", crt, "-days", "3", "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return crt, key

    def issue(self, name, cn, sans, client=False, ca="main", serial=None):
        """A leaf certificate for `cn` signed by the main (or "wrong") CA:
        returns (cert path, key path)."""
        ca_crt, ca_key = (self.ca, self.ca_key) if ca == "main" else (self.wrong_ca,
                                                                      self.wrong_ca_key)
        if serial is None:
            self._serial += 1
            serial = self._serial
        key, csr, crt = (self.dir / f"{name}.key", self.dir / f"{name}.csr",
                         self.dir / f"{name}.crt")
        ext = self.dir / f"{name}.ext"
        lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                 "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth")]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial",
                 serial, "-days", "3", "-out", crt, "-extfile", ext, cwd=self.dir)
        return crt, key

    def copy(self, pair, directory, name):
        """Copies a (cert, key) pair to directory/name.crt, name.key."""
        directory = Path(directory)
        crt, key = directory / f"{name}.crt", directory / f"{name}.key"
        shutil.copyfile(pair[0], crt)
        shutil.copyfile(pair[1], key)
        return crt, key


def cert_serial(path):
    """The serial number of a PEM certificate file (int)."""
    out = _openssl("x509", "-in", path, "-noout", "-serial", cwd=Path(path).parent)
    return int(out.strip().split("=", 1)[1], 16)


def subject_cn(peercert):
    """The CN of a certificate as ssl.getpeercert() returns it."""
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


# --------------------------------------------------------------------------
# levee with a listen list


class TlsLevee(Levee):
    """A Levee whose config has `listen:` as a list. `port` is the first plain
    listener (the harness waits for it and talks HTTP to it); `tls_port` is set
    by start_levee()."""

    tls_port = None

    def _listen_from_config(self, text):
        block = re.search(r"^listen\s*:\s*\n((?:[ \t]+.*\n)+)", text, re.MULTILINE)
        if block:
            items = re.split(r"^[ \t]*-[ \t]*", block.group(1), flags=re.MULTILINE)
            for item in items:
                m = re.search(r"address\s*:\s*['\"]?([0-9.]+):([0-9]+)", item)
                if m and not re.search(r"^\s*tls\s*:|[{ ]tls\s*:", item, re.MULTILINE):
                    return m.group(1), int(m.group(2))
        return super()._listen_from_config(text)


def listen_block(tls_port, plain_port, certs, handshake_timeout="1s", min_version="1.2",
                 extra=""):
    """YAML text of a listen list: the TLS listener first (so that the plain one,
    which the harness waits for, opens after it), then the plain one."""
    cert_lines = "".join(f"          - {{cert: {c}, key: {k}}}\n" for c, k in certs)
    return (f"listen:\n"
            f"  - address: 127.0.0.1:{tls_port}\n"
            f"    tls:\n"
            f"      certificates:\n{cert_lines}"
            f"      handshake_timeout: {handshake_timeout}\n"
            f"      min_version: \"{min_version}\"\n"
            + "".join(f"      {line}\n" for line in extra.splitlines() if line.strip())
            + f"  - address: 127.0.0.1:{plain_port}\n")


def start_levee(h, certs, body, **listen_kw):
    """Starts levee with a TLS and a plain listener and the YAML `body` (the rest
    of the config, dedented text). Returns the TlsLevee (.port plain, .tls_port)."""
    import textwrap

    tls_port, plain_port = PORTS.get(), PORTS.get()
    text = listen_block(tls_port, plain_port, certs, **listen_kw) + textwrap.dedent(body).lstrip(
        "\n")
    h._counter += 1
    name = "levee" if h._counter == 1 else f"levee{h._counter}"
    lv = TlsLevee(h, text, name=name, start=False)
    lv.tls_port = tls_port
    h._levees.append(lv)
    lv.start()
    assert lv.port == plain_port
    # The admin listener (metrics) opens a moment after the proxy's.
    wait_for(lambda: port_accepts("127.0.0.1", lv.admin_port), what="levee's admin port")
    return lv


# --------------------------------------------------------------------------
# clients


def client_context(ca=None, alpn=("http/1.1",), min_version=None, max_version=None,
                   legacy=False, cert=None):
    """A client SSLContext verifying against `ca` (no verification without it).
    Host names are not checked here: tests look at the certificate themselves."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(ca))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if legacy:  # let OpenSSL 3 speak TLS 1.0/1.1 at all
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if min_version:
            ctx.minimum_version = min_version
        if max_version:
            ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


class TlsClient(RawClient):
    """RawClient over TLS: connects, shakes hands (SNI = server_name, none if
    None) and then reads and writes HTTP through the TLS socket."""

    def __init__(self, port, ctx, server_name=None, host="127.0.0.1", timeout=DEADLINE):
        super().__init__(port, host=host, timeout=timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)
        self.reader = SockReader(self.sock)

    @property
    def peer_cert(self):
        return self.sock.getpeercert()

    @property
    def alpn(self):
        return self.sock.selected_alpn_protocol()


def tls_client(h, port, ctx, server_name=None, **kw):
    """A TlsClient closed at the harness's teardown."""
    c = TlsClient(port, ctx, server_name, **kw)
    h._clients.append(c)
    return c


def curl(args, timeout=60):
    """Runs curl (silent, errors shown); returns the CompletedProcess (text)."""
    return subprocess.run(["curl", "-sS", "--max-time", "30", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def client_hello(server_name="a.test"):
    """The bytes of a real TLS ClientHello (made with a memory BIO)."""
    ctx = client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert data[:1] == b"\x16", data[:16]
    return data


# --------------------------------------------------------------------------
# metrics


def metrics(lv):
    """levee's /metrics (admin port) as {"name{labels}": float}."""
    resp = http_get(lv.admin_port, "/metrics", {"Host": f"127.0.0.1:{lv.admin_port}"})
    assert resp.status == 200, resp
    out = {}
    for line in resp.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def handshakes(lv, result):
    return metrics(lv).get(f'levee_tls_handshakes_total{{result="{result}"}}', 0.0)


# --------------------------------------------------------------------------
# backends


class TlsBackend(ScriptedBackend):
    """A ScriptedBackend speaking TLS: each accepted connection shakes hands in
    its own thread (server side, `ctx`); the handler then gets a BackendConn on
    the TLS socket, with `conn.tls` (a dict: sni, peer_cn, session_reused,
    version). `handshakes` lists those dicts for every connection that
    completed its handshake, `handshake_errors` the errors of those that did
    not."""

    def __init__(self, handler, ctx, id="tls", host_in_url="127.0.0.1", **kw):
        self.ctx = ctx
        self.host_in_url = host_in_url
        self.handshakes = []
        self.handshake_errors = []
        self._tls_socks = []
        ctx.sni_callback = self._on_sni
        super().__init__(handler, id=id, **kw)

    @staticmethod
    def _on_sni(sslsock, name, _ctx):
        sslsock.levee_sni = name  # read back after the handshake

    @property
    def url(self):
        return f"https://{self.host_in_url}:{self.port}"

    def _run(self, sock, addr, index):
        sock.settimeout(DEADLINE)
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(e)
            try:
                sock.close()
            except OSError:
                pass
            return
        peer = tls.getpeercert()
        info = {
            "index": index,
            "sni": getattr(tls, "levee_sni", None),
            "peer_cn": subject_cn(peer) if peer else None,
            "session_reused": tls.session_reused,
            "version": tls.version(),
            "alpn": tls.selected_alpn_protocol(),
        }
        with self._lock:
            self.handshakes.append(info)
            self._tls_socks.append(tls)
        conn = BackendConn(self, tls, addr, index)
        conn.tls = info
        try:
            self.handler(conn)
        except Exception as e:  # noqa: BLE001 - recorded for the test to inspect
            if not self.stopping.is_set():
                self.errors.append(e)
        finally:
            conn.close()

    def stop(self):
        with self._lock:
            socks = list(self._tls_socks)
        for s in socks:  # wake handler threads blocked in a read
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass
        super().stop()


def server_context(pair, client_ca=None):
    """A server SSLContext with the (cert, key) pair; client certificates are
    required (and verified against client_ca) when client_ca is given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pair[0]), str(pair[1]))
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca))
    return ctx


def tls_backend(h, handler, pair, id="tls", client_ca=None, host_in_url="127.0.0.1"):
    """A TlsBackend stopped at the harness's teardown."""
    b = TlsBackend(handler, server_context(pair, client_ca), id=id, host_in_url=host_in_url)
    h._scripted.append(b)
    return b


class WsEchoBackend:
    """A websockets (python3-websockets) echo server on 127.0.0.1, in a thread
    with its own event loop. `paths` records the request paths it accepted."""

    def __init__(self):
        import websockets

        self._websockets = websockets
        self.paths = []
        self.port = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="ws-echo")
        self._thread.start()
        if not self._ready.wait(DEADLINE) or self._error:
            raise RuntimeError(f"websocket backend did not start: {self._error!r}")

    async def _echo(self, ws, path=None):
        self.paths.append(getattr(ws, "path", path))
        async for message in ws:
            await ws.send(message)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            server = self.loop.run_until_complete(
                self._websockets.serve(self._echo, "127.0.0.1", 0))
        except Exception as e:  # noqa: BLE001
            self._error = e
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def ws_backend(h):
    b = WsEchoBackend()
    h._scripted.append(b)  # the harness calls .stop() on these at teardown
    return b


def closed_at(sock, deadline):
    """Monotonic time at which the peer closed `sock` (EOF or reset), reading and
    dropping whatever arrives; AssertionError if it is still open at `deadline`."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("connection still open at the deadline")
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return time.monotonic()
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic()
        except socket.timeout:
            raise AssertionError("connection still open at the deadline") from None


__all__ = [
    "Pki", "cert_serial", "subject_cn", "TlsLevee", "listen_block", "start_levee",
    "client_context", "TlsClient", "tls_client", "curl", "client_hello", "metrics",
    "handshakes", "TlsBackend", "server_context", "tls_backend", "WsEchoBackend", "ws_backend",
    "closed_at",
]
