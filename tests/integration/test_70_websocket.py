"""70 — WebSocket and other upgrades.

A real client (python3-websockets) talks through levee to a real WebSocket
backend (wsutil.py, a subprocess): messages both ways, a 16 MiB message, ping
and pong, the close handshake from either side, a backend that dies, the
tunnel idle timeout, back-pressure with bounded memory, retries of the
upgrade request, metrics, the access log line, and 1,000 tunnels at once.
Raw sockets check what the HTTP side must keep doing: a refused upgrade (403
from the backend, 200 from a plain HTTP backend) leaves an HTTP connection
that serves the next request (also one pipelined behind it), an upgrade to a
protocol not in upgrade.allow reaches the backend as a plain request, an
allowed one reaches it with its upgrade fields and key intact, and bytes
that share a read with the request or with the 101 are relayed. A scripted
backend that stops reading checks that a dead tunnel's backend connection
does not outlive it.
"""

import asyncio
import base64
import hashlib
import json
import os
import resource
import signal
import socket
import struct
import threading
import time

import pytest
import websockets  # Debian's python3-websockets (10.x): a missing one is an error

from harness import build_request, http_get, parse_combined, port_accepts, wait_for
from wsutil import WsBackend, run, ws_connect

KiB = 1024
MiB = 1024 * 1024
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def ws(h):
    """Start WebSocket backends: ws("name", "--mode", "sink", ...). Each is
    stopped (SIGTERM, then SIGKILL, by PID) at teardown."""
    started = []

    def start(name="ws", *args, record=True):
        b = WsBackend(h.tmp_path, name, args, record=record)
        started.append(b)
        return b.start()

    yield start
    for b in started:
        b.stop()


def backends(*pairs, extra=""):
    out = "backends:\n"
    for bid, url in pairs:
        out += f"  - id: {bid}\n    url: {url}\n"
    return out + extra


def one(b, extra=""):
    return backends((b.name, b.url), extra=extra)


def metrics(lv):
    """levee's /metrics as {"name{labels}": value}. levee opens its admin
    listener after its proxy port, which is what the harness waits for."""
    wait_for(lambda: port_accepts(lv.admin_host, lv.admin_port), interval=0.05,
             what="levee's admin port")
    resp = http_get(lv.admin_port, "/metrics", {"Host": f"{lv.admin_host}:{lv.admin_port}"},
                    host=lv.admin_host)
    assert resp.status == 200, resp
    out = {}
    for line in resp.body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def tunnel_metrics(lv):
    m = metrics(lv)
    return {
        "total": m["levee_tunnels_total"],
        "open": m["levee_tunnels_open"],
        "up": m['levee_tunnel_bytes_total{direction="up"}'],
        "down": m['levee_tunnel_bytes_total{direction="down"}'],
    }


def wait_tunnels_open(lv, n, timeout=20):
    return wait_for(lambda: tunnel_metrics(lv)["open"] == n, timeout=timeout, interval=0.05,
                    what=f"levee_tunnels_open == {n} (now {tunnel_metrics(lv)['open']})")


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def upgrade_request(target, key=None, extra=()):
    return build_request("GET", target, [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key or ws_key()),
        *extra,
    ])


def client_frame(payload, opcode=0x1):
    """One masked frame, as a client must send it (payloads < 64 KiB)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_server_frame(c, timeout=20):
    """(opcode, payload) of one unmasked frame from the raw client's reader."""
    deadline = time.monotonic() + timeout
    head = c.reader.read_exact(2, deadline)
    assert len(head) == 2, f"connection closed inside a frame head: {head!r}"
    n = head[1] & 0x7F
    assert not head[1] & 0x80, "a server frame must not be masked"
    if n == 126:
        n = int.from_bytes(c.reader.read_exact(2, deadline), "big")
    elif n == 127:
        n = int.from_bytes(c.reader.read_exact(8, deadline), "big")
    return head[0] & 0x0F, c.reader.read_exact(n, deadline)


def header_names(pairs):
    return [k.lower() for k, _v in pairs]


def header_values(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


# --------------------------------------------------------------------------
# messages


def test_text_and_binary_messages_echo(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))
    blob = bytes(range(256)) * 40

    async def scenario():
        async with ws_connect(lv.port, "/chat") as c:
            await c.send("héllo, levee")
            text = await c.recv()
            await c.send(blob)
            binary = await c.recv()
            await c.send("")
            empty = await c.recv()
        return text, binary, empty

    text, binary, empty = run(scenario())

    assert text == "héllo, levee" and isinstance(text, str)
    assert binary == blob and isinstance(binary, bytes)
    assert empty == ""
    [conn] = b.wait_events("connect")
    assert conn["path"] == "/chat"
    sizes = [(e["type"], e["size"]) for e in b.wait_events("message", 3)]
    assert sizes == [("text", len("héllo, levee")), ("binary", len(blob)), ("text", 0)]


def test_16MiB_message_round_trip_is_intact(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))
    big = os.urandom(16 * MiB)

    async def scenario():
        async with ws_connect(lv.port, "/big") as c:
            await c.send(big)
            return await c.recv()

    back = run(scenario(), timeout=90)

    assert len(back) == len(big)
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(big).hexdigest()


def test_ping_and_pong_cross_levee_both_ways(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))

    async def scenario():
        async with ws_connect(lv.port) as c:
            # client -> backend ping, backend's pong back
            waiter = await c.ping(b"from-client")
            await asyncio.wait_for(waiter, 20)
            # backend -> client ping (the client answers it by itself)
            await c.send("cmd:ping")
            return await asyncio.wait_for(c.recv(), 20)

    assert run(scenario()) == "pong-received"


# --------------------------------------------------------------------------
# the end of a tunnel


def test_close_started_by_the_client_reaches_the_backend(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))

    async def scenario():
        async with ws_connect(lv.port) as c:
            await c.send("one")
            assert await c.recv() == "one"
            started = time.monotonic()
            await c.close(code=4001, reason="client says bye")
            return c.close_code, c.close_reason, time.monotonic() - started

    code, reason, took = run(scenario())

    # the backend echoed the close frame: the client's handshake completed
    assert (code, reason) == (4001, "client says bye")
    assert took < 8, f"the close handshake took {took:.1f}s"
    [closed] = b.wait_events("close")
    assert (closed["code"], closed["reason"]) == (4001, "client says bye")
    wait_tunnels_open(lv, 0)


def test_close_started_by_the_backend_reaches_the_client(h, ws):
    b = ws("ws", "--close-after", "2", "--close-code", "4002", "--close-reason", "backend done")
    lv = h.levee(one(b))

    async def scenario():
        async with ws_connect(lv.port) as c:
            await c.send("a")
            await c.send("b")
            got = [await c.recv(), await c.recv()]
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(c.recv(), 20)
            assert info.value.rcvd is not None, "the backend's close frame did not arrive"
            await asyncio.wait_for(c.wait_closed(), 20)
            return got, c.close_code, c.close_reason

    got, code, reason = run(scenario())

    assert got == ["a", "b"]
    assert (code, reason) == (4002, "backend done")
    [closed] = b.wait_events("close")
    assert closed["code"] == 4002
    wait_tunnels_open(lv, 0)


def test_backend_killed_mid_tunnel_closes_the_client_promptly(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))

    async def scenario():
        async with ws_connect(lv.port) as c:
            await c.send("before")
            assert await c.recv() == "before"
            b.kill()  # SIGKILL: no close frame, the kernel closes its sockets
            killed = time.monotonic()
            try:
                await asyncio.wait_for(c.wait_closed(), 5)
            except asyncio.TimeoutError:
                pytest.fail("the client connection is still open 5 s after the backend died")
            return time.monotonic() - killed, c.close_code

    took, code = run(scenario())

    print(f"client saw the close {took:.2f}s after the backend was killed")
    assert code == 1006, "no close frame came from anywhere: an abnormal closure"
    wait_tunnels_open(lv, 0)
    [line] = [parse_combined(x) for x in lv.access_log_lines(1)]
    assert line["status"] == 101


def test_idle_tunnel_is_closed_and_a_busy_one_is_kept(h, ws):
    b = ws("ws")
    lv = h.levee(one(b, extra="timeouts:\n  tunnel: 1s\n"))

    async def idle():
        async with ws_connect(lv.port, "/idle") as c:
            await c.send("x")
            assert await c.recv() == "x"
            last = time.monotonic()
            try:
                await asyncio.wait_for(c.wait_closed(), 12)
            except asyncio.TimeoutError:
                return None
            return time.monotonic() - last

    async def busy():
        async with ws_connect(lv.port, "/busy") as c:
            start = time.monotonic()
            i = 0
            while time.monotonic() - start < 3.5:
                await c.send(f"tick {i}")
                assert await asyncio.wait_for(c.recv(), 10) == f"tick {i}"
                i += 1
                await asyncio.sleep(0.3)
            alive_for = time.monotonic() - start
            still_open = c.open
            # and it still carries messages after 3.5 s
            await c.send("last")
            last = await asyncio.wait_for(c.recv(), 10)
            return alive_for, still_open, last, i

    async def both():
        return await asyncio.gather(idle(), busy())

    idle_closed_after, (alive_for, still_open, last, ticks) = run(both(), timeout=60)

    assert idle_closed_after is not None, "an idle tunnel stayed open 12 s with timeouts.tunnel 1s"
    print(f"idle tunnel closed {idle_closed_after:.2f}s after its last byte")
    assert 0.9 <= idle_closed_after <= 8, f"idle tunnel closed after {idle_closed_after:.2f}s"
    assert still_open and last == "last", (
        f"a tunnel with a message every 300 ms was closed (after {alive_for:.1f}s, {ticks} ticks)")
    assert alive_for >= 3


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_gone_mid_tunnel_closes_the_backend_side(h, ws, how):
    b = ws("ws")
    lv = h.levee(one(b))
    c = lv.client()
    c.send(upgrade_request("/gone"))
    assert c.read_head().status == 101
    c.send(client_frame(b"still here"))
    assert read_server_frame(c) == (0x1, b"still here")
    b.wait_events("connect")

    gone = time.monotonic()
    if how == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # no close frame: the TCP connection just ends
    [closed] = b.wait_events("close", timeout=20)
    took = time.monotonic() - gone

    assert closed["code"] == 1006, closed
    assert took < 5, f"the backend saw its side close {took:.1f}s after the client left"
    wait_tunnels_open(lv, 0)
    [line] = [parse_combined(x) for x in lv.access_log_lines(1)]
    assert line["status"] == 101


def test_sigterm_with_an_open_tunnel_ends_it_within_the_grace_period(h, ws):
    b = ws("ws")
    lv = h.levee(one(b, extra="timeouts:\n  shutdown: 2s\n"))

    async def scenario():
        async with ws_connect(lv.port) as c:
            await c.send("before")
            assert await c.recv() == "before"
            sent = time.monotonic()
            lv.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(c.wait_closed(), 15)
            except asyncio.TimeoutError:
                pytest.fail("the tunnel was still open 15 s after SIGTERM (grace period 2 s)")
            return time.monotonic() - sent

    closed_after = run(scenario())
    rc = lv.wait_exit(15)

    print(f"tunnel closed {closed_after:.2f}s after SIGTERM")
    assert closed_after <= 10, closed_after
    assert rc == 0, f"levee exit code {rc} after SIGTERM with an open tunnel"


def test_frame_sent_with_the_101_reaches_the_client_and_is_counted(h):
    # The backend writes its first frame in the same write as its 101: levee
    # reads both at once and must relay what follows the head.
    greeting = b"\x81\x08greeting"
    bye = b"\x81\x03bye"
    got = {}

    def handler(conn):
        req = conn.read_request()
        key = req.headers.get("sec-websocket-key")
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                  + ws_accept(key).encode() + b"\r\n\r\n" + greeting)
        got["up"] = conn.reader.read_exact(len(from_client), time.monotonic() + 20)
        conn.send(bye)
        conn.close()

    from_client = client_frame(b"hi")
    b = h.scripted(handler, id="raw")
    lv = h.levee(backends(("raw", b.url)))
    before = tunnel_metrics(lv)
    c = lv.client()
    c.send(upgrade_request("/early"))
    head = c.read_head()
    assert head.status == 101, head
    assert read_server_frame(c) == (0x1, b"greeting")
    c.send(from_client)
    assert read_server_frame(c) == (0x1, b"bye")
    assert c.wait_closed(20) in ("eof", "reset")
    assert got["up"] == from_client
    wait_tunnels_open(lv, 0)
    [line] = [parse_combined(x) for x in lv.access_log_lines(1)]
    assert line["bytes"] == len(greeting) + len(bye), line

    after = tunnel_metrics(lv)
    assert after["up"] - before["up"] == len(from_client), (before, after)
    assert after["down"] - before["down"] == len(greeting) + len(bye), (
        'levee_tunnel_bytes_total{direction="down"} must count the bytes that came in the '
        "same read as the 101 (the access log does)", before, after)


def test_frame_sent_with_the_upgrade_request_reaches_the_backend(h, ws):
    # RFC 6455 clients wait for the 101, but levee's tunnel is protocol-blind
    # and promises to relay "bytes the client sent right behind its request"
    # (tunnel.c): they arrive in the same read as the request.
    b = ws("ws")
    lv = h.levee(one(b))
    c = lv.client()

    c.send(upgrade_request("/eager") + client_frame(b"eager"))

    assert c.read_head().status == 101
    try:
        frame = read_server_frame(c, timeout=5)
    except TimeoutError:
        frame = None
    assert frame == (0x1, b"eager"), (
        "the frame sent in the same write as the upgrade request never reached the backend",
        b.events())


@pytest.mark.parametrize("kind", ["h2c-not-allowed", "ws-403"])
def test_request_pipelined_behind_an_upgrade_that_does_not_happen_is_answered(h, ws, kind):
    # An upgrade that does not happen leaves the connection HTTP/1.1: a
    # request pipelined behind it (same write) must be answered in turn.
    if kind == "ws-403":
        b = ws("ws", "--refuse", "403")
        lv = h.levee(one(b))
        first = upgrade_request("/ws")
        expect = 403
    else:
        d = h.demo("plain")
        lv = h.levee(backends(("plain", d.url)))
        first = build_request("GET", "/echo/first", [
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")])
        expect = 200
    c = lv.client()

    c.send(first + build_request("GET", "/echo/second"))

    r1 = c.read_response()
    assert r1.status == expect, r1
    try:
        r2 = c.read_response(timeout=5)
    except TimeoutError:
        r2 = None
    assert r2 is not None, "the request pipelined behind the upgrade request got no answer"
    assert r2.status == 200 and r2.json()["path"] == "/echo/second", r2


# --------------------------------------------------------------------------
# upgrades that do not happen


@pytest.mark.parametrize("kind", ["ws-403", "demo-200"])
def test_refused_upgrade_is_relayed_and_the_connection_stays_http(h, ws, kind):
    if kind == "ws-403":
        b = ws("ws", "--refuse", "403")
        lv = h.levee(one(b))
        expect, follow = 403, "/after"
    else:
        d = h.demo("plain")
        lv = h.levee(backends(("plain", d.url)))
        expect, follow = 200, "/echo/after"

    c = lv.client()
    c.send(upgrade_request("/ws"))
    first = c.read_response()
    assert first.status == expect, first
    assert first.complete and first.framing in ("length", "chunked"), first
    assert "upgrade" not in first.headers.tokens("connection"), first
    assert "close" not in first.headers.tokens("connection"), (
        "levee must keep the client connection after a refused upgrade", first)

    second = c.get(follow)  # same connection: it is still HTTP

    assert second.status == 200, second
    seen = second.json()
    assert seen["path"] == follow
    assert "upgrade" not in header_names(seen["headers"])
    if kind == "ws-403":
        assert [e["path"] for e in b.wait_events("refused")] == ["/ws"]
        assert [e["path"] for e in b.wait_events("http")] == ["/after"]
    wait_tunnels_open(lv, 0)
    assert tunnel_metrics(lv)["total"] == 0


def test_refused_upgrade_reaches_the_websocket_client_as_its_status(h, ws):
    b = ws("ws", "--refuse", "403")
    lv = h.levee(one(b))

    async def scenario():
        with pytest.raises(websockets.InvalidStatusCode) as info:
            async with ws_connect(lv.port):
                pass
        return info.value.status_code

    assert run(scenario()) == 403


@pytest.mark.parametrize("extra_yaml, upgrade", [
    ("", "h2c"),
    ("upgrade:\n  allow: [foo]\n", "websocket"),
], ids=["h2c-default-allow", "websocket-not-in-allow"])
def test_upgrade_to_a_protocol_not_allowed_is_a_plain_request(h, extra_yaml, upgrade):
    d = h.demo("plain")
    lv = h.levee(backends(("plain", d.url), extra=extra_yaml))
    c = lv.client()

    c.send(build_request("GET", "/echo/up", [
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", upgrade),
        ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]))
    resp = c.read_response()

    assert resp.status == 200, resp
    seen = header_names(resp.json()["headers"])
    assert "upgrade" not in seen and "connection" not in seen and "http2-settings" not in seen, seen
    assert "sec-websocket-key" in seen  # an end-to-end field: forwarded
    # the connection is plain HTTP afterwards
    again = c.get("/echo/again")
    assert again.status == 200 and again.json()["path"] == "/echo/again"
    assert tunnel_metrics(lv)["total"] == 0


def test_upgrade_request_reaches_the_backend_with_its_fields_intact(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))
    key = ws_key()

    c = lv.client()
    c.send(upgrade_request("/raw?x=1", key, extra=[("Sec-WebSocket-Protocol", "chat")]))
    head = c.read_head()

    assert head.status == 101, head
    assert head.headers.tokens("upgrade") == ["websocket"], head
    assert "upgrade" in head.headers.tokens("connection"), head
    assert head.headers.get("sec-websocket-accept") == ws_accept(key), head
    assert head.headers.get("x-request-id"), head
    # the tunnel carries frames both ways
    c.send(client_frame(b"raw hello"))
    assert read_server_frame(c) == (0x1, b"raw hello")

    [conn] = b.wait_events("connect")
    hdrs = conn["headers"]
    assert conn["path"] == "/raw?x=1"
    assert [v.lower() for v in header_values(hdrs, "upgrade")] == ["websocket"], hdrs
    conn_tokens = [t.strip().lower() for v in header_values(hdrs, "connection") for t in v.split(",")]
    assert conn_tokens == ["upgrade"], hdrs
    assert header_values(hdrs, "sec-websocket-key") == [key], hdrs
    assert header_values(hdrs, "sec-websocket-version") == ["13"], hdrs
    assert header_values(hdrs, "sec-websocket-protocol") == ["chat"], hdrs
    assert header_values(hdrs, "x-forwarded-for"), hdrs

    c.send(client_frame(b"\x03\xe8", opcode=0x8))  # close 1000
    assert read_server_frame(c)[0] == 0x8
    assert c.wait_closed(20) in ("eof", "reset")


# --------------------------------------------------------------------------
# back-pressure


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


def test_fast_client_to_slow_backend_keeps_memory_bounded(h, ws):
    # The backend sleeps 0.1 s before each 1 MiB message it reads (at most one
    # queued): ~10 MiB/s. The client pushes 64 MiB as fast as TCP takes it. A
    # levee without back-pressure holds most of the 64 MiB; with it, at most
    # its 256 KiB high-water mark (plus ASan's 16 MiB quarantine, filled by the
    # warm-up, and shadow memory).
    b = ws("sink", "--mode", "sink", "--slow", "0.1", record=False)
    lv = h.levee(one(b), extra_asan="quarantine_size_mb=16")
    block = os.urandom(MiB)
    warm = os.urandom(8 * MiB)

    async def push(blocks, payload):
        async with ws_connect(lv.port, "/push") as c:
            for _ in range(blocks):
                await c.send(payload)
            await c.send("done")
            return json.loads(await asyncio.wait_for(c.recv(), 120))

    warm_result = run(push(3, warm), timeout=120)
    assert warm_result["bytes"] == 24 * MiB
    baseline = lv.rss_bytes()
    started = time.monotonic()
    with RssSampler(lv) as rss:
        result = run(push(64, block), timeout=120)
    took = time.monotonic() - started

    expect = hashlib.sha256(block * 64).hexdigest()
    assert result == {"bytes": 64 * MiB, "messages": 64, "sha256": expect}
    growth = rss.peak - baseline
    print(f"up: 64 MiB in {took:.1f}s; levee RSS baseline {baseline / MiB:.1f} MiB, "
          f"peak {rss.peak / MiB:.1f} MiB, growth {growth / MiB:.1f} MiB")
    assert took >= 5, f"the slow backend took 64 MiB in {took:.1f}s: the scenario is not slow"
    assert growth < 32 * MiB, f"levee's RSS grew by {growth / MiB:.1f} MiB (no back-pressure?)"


def test_fast_backend_to_slow_client_keeps_memory_bounded(h, ws):
    # The other direction: the backend sends 64 MiB as fast as TCP takes it,
    # the client reads one 1 MiB message every 0.1 s (at most one queued).
    b = ws("ws", record=False)
    lv = h.levee(one(b), extra_asan="quarantine_size_mb=16")

    async def pull(count, size, pause):
        got = 0
        digest = None
        async with ws_connect(lv.port, "/pull", max_queue=1) as c:
            await c.send(f"cmd:flood {count} {size}")
            for _ in range(count):
                if pause:
                    await asyncio.sleep(pause)
                msg = await asyncio.wait_for(c.recv(), 60)
                got += len(msg)
                digest = hashlib.sha256(msg).hexdigest()
            summary = json.loads(await asyncio.wait_for(c.recv(), 60))
        return got, digest, summary

    got, _d, _s = run(pull(3, 8 * MiB, 0), timeout=120)  # warm-up, at full speed
    assert got == 24 * MiB
    baseline = lv.rss_bytes()
    started = time.monotonic()
    with RssSampler(lv) as rss:
        got, digest, summary = run(pull(64, MiB, 0.1), timeout=120)
    took = time.monotonic() - started

    assert got == 64 * MiB == summary["sent"]
    assert digest == summary["sha256"]
    growth = rss.peak - baseline
    print(f"down: 64 MiB in {took:.1f}s; levee RSS baseline {baseline / MiB:.1f} MiB, "
          f"peak {rss.peak / MiB:.1f} MiB, growth {growth / MiB:.1f} MiB")
    assert took >= 5, f"the slow client took 64 MiB in {took:.1f}s: the scenario is not slow"
    assert growth < 32 * MiB, f"levee's RSS grew by {growth / MiB:.1f} MiB (no back-pressure?)"


def test_tunnel_ending_while_the_backend_does_not_read_still_closes_it(h):
    # The backend accepts the upgrade, then reads nothing. The client fills
    # the tunnel until levee stops reading it, and the idle timeout ends the
    # tunnel. levee's connection to the backend, which still holds unsent
    # bytes, must be closed too (bounded like a client that does not read:
    # timeouts.idle), not kept for as long as the backend stays silent.
    def handler(conn):
        req = conn.read_request()
        key = req.headers.get("sec-websocket-key")
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                  + ws_accept(key).encode() + b"\r\n\r\n")
        conn.hang(60)

    b = h.scripted(handler, id="stalled")
    lv = h.levee(backends(("stalled", b.url), extra="timeouts:\n  tunnel: 1s\n  idle: 2s\n  shutdown: 2s\n"))
    c = lv.client()
    c.send(upgrade_request("/stall"))
    assert c.read_head().status == 101
    # a few MiB: more than levee's high-water mark and the socket buffers
    c.sock.settimeout(0.5)
    chunk = b"\x82" + bytes(64 * KiB - 1)
    sent = 0
    try:
        while sent < 64 * MiB:
            sent += c.sock.send(chunk)
    except (socket.timeout, OSError):
        pass
    wait_tunnels_open(lv, 0)  # the idle timeout ended it
    ended = time.monotonic()

    def backend_connections():
        return metrics(lv)["levee_backend_connections"]

    try:
        wait_for(lambda: backend_connections() == 0, timeout=10, interval=0.1)
    except AssertionError:
        pytest.fail(f"levee still holds its connection to the backend "
                    f"{time.monotonic() - ended:.0f}s after the tunnel ended "
                    f"(levee_backend_connections {backend_connections():.0f}; "
                    f"the client sent {sent / MiB:.1f} MiB)")


# --------------------------------------------------------------------------
# balancing and retries


def test_failed_upgrade_attempt_is_retried(h, ws):
    dead = h.closed_port()
    b = ws("ws")
    lv = h.levee(backends(("dead", f"http://127.0.0.1:{dead}"), ("ws", b.url)))
    n = 8

    async def scenario():
        got = []
        for i in range(n):
            async with ws_connect(lv.port, f"/r/{i}") as c:
                await c.send(f"m{i}")
                got.append(await c.recv())
        return got

    assert run(scenario()) == [f"m{i}" for i in range(n)]

    lines = [parse_combined(x) for x in lv.access_log_lines(n)]
    assert [x["status"] for x in lines] == [101] * n
    assert all(x["backend"] == "ws" for x in lines), lines
    assert any(x["attempts"] == 2 for x in lines), (
        "round robin sends some upgrades to the dead backend first", lines)


# --------------------------------------------------------------------------
# metrics and the access log


def test_tunnel_metrics_count_tunnels_and_bytes(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))
    before = tunnel_metrics(lv)
    payload = os.urandom(100 * KiB)
    during = {}

    async def scenario():
        async with ws_connect(lv.port) as c:
            during.update(tunnel_metrics(lv))
            for _ in range(3):
                await c.send(payload)
                assert await c.recv() == payload

    run(scenario())
    wait_tunnels_open(lv, 0)
    after = tunnel_metrics(lv)

    assert before["total"] == 0 and before["open"] == 0
    assert during["total"] == 1 and during["open"] == 1, during
    assert after["total"] == 1 and after["open"] == 0, after
    sent = 3 * len(payload)
    assert after["up"] - before["up"] >= sent, (before, after)
    assert after["down"] - before["down"] >= sent, (before, after)
    # ... and not wildly more (frame heads, the close frames)
    assert after["up"] - before["up"] < sent + 4 * KiB
    assert after["down"] - before["down"] < sent + 4 * KiB


def test_access_log_line_is_written_when_the_tunnel_ends(h, ws):
    b = ws("ws")
    lv = h.levee(one(b))
    payload = os.urandom(50 * KiB)

    async def scenario():
        opened = time.monotonic()
        async with ws_connect(lv.port, "/logged?q=1") as c:
            await c.send(payload)
            assert await c.recv() == payload
            await asyncio.sleep(1.5)  # the tunnel's life, measured below
            lines_while_open = lv.access_log_path.read_text() if lv.access_log_path.exists() else ""
        return time.monotonic() - opened, lines_while_open

    life, while_open = run(scenario())

    assert while_open.strip() == "", f"a line was logged while the tunnel was open: {while_open!r}"
    [line] = [parse_combined(x) for x in lv.access_log_lines(1)]
    assert line["request"] == "GET /logged?q=1 HTTP/1.1"
    assert line["status"] == 101
    assert line["bytes"] >= len(payload), line
    assert line["bytes"] < len(payload) + 4 * KiB, line
    assert line["backend"] == "ws"
    # `life` runs from before the handshake to the end of the close: at most
    # the tunnel's own life plus the handshakes.
    assert line["duration"] >= 1.5, line
    assert line["duration"] <= life + 1, (line, life)


# --------------------------------------------------------------------------
# 1,000 tunnels


def test_1000_concurrent_tunnels(h, ws):
    n = 1000
    need = 3 * n + 200  # this process: n client sockets; levee: 2n; the backend: n
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}: cannot open {n} tunnels")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # levee and the backend inherit the raised limit
    b = ws("ws", record=False)
    lv = h.levee(one(b), extra_asan="quarantine_size_mb=16")
    batch = 100

    async def scenario():
        # warm-up: a few tunnels opened and closed, so that the baseline has
        # the worker's buffers and free lists
        warm = [await ws_connect(lv.port, f"/warm/{i}") for i in range(10)]
        for i, c in enumerate(warm):
            await c.send(f"w{i}")
            assert await c.recv() == f"w{i}"
        await asyncio.gather(*(c.close() for c in warm))
        await asyncio.get_running_loop().run_in_executor(None, wait_tunnels_open, lv, 0)
        before = lv.rss_bytes()

        started = time.monotonic()
        conns = []
        for lo in range(0, n, batch):
            conns += await asyncio.gather(*(ws_connect(lv.port, f"/t/{i}")
                                            for i in range(lo, min(n, lo + batch))))
        connected = time.monotonic() - started

        async def one_echo(i, c):
            await c.send(f"msg {i}")
            return await c.recv()

        echoes = await asyncio.gather(*(one_echo(i, c) for i, c in enumerate(conns)))
        m_open = tunnel_metrics(lv)
        with_open = lv.rss_bytes()
        await asyncio.gather(*(c.close() for c in conns))
        closed = [c.close_code for c in conns]
        return before, with_open, echoes, m_open, closed, connected

    before, with_open, echoes, m_open, closed, connected = run(scenario(), timeout=120)

    per_tunnel = (with_open - before) / n / KiB
    print(f"{n} tunnels connected in {connected:.1f}s; levee RSS {before / MiB:.1f} MiB before, "
          f"{with_open / MiB:.1f} MiB with {n} open: {per_tunnel:.1f} KiB per tunnel")
    assert echoes == [f"msg {i}" for i in range(n)]
    assert m_open["open"] == n, m_open
    assert closed == [1000] * n
    wait_tunnels_open(lv, 0, timeout=30)
    assert tunnel_metrics(lv)["total"] == n + 10
    assert per_tunnel < 64, f"{per_tunnel:.1f} KiB of levee RSS per open tunnel"
