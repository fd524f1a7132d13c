"""WebSocket helpers for levee's integration tests (test_70_websocket.py).

Two halves:

- Run as a script, this file is a WebSocket backend built on Debian's
  python3-websockets (10.x, asyncio API)::

      /usr/bin/python3 wsutil.py [--mode echo|sink] [--close-after N]
          [--close-code C] [--close-reason R] [--refuse STATUS] [--slow SECONDS]
          [--record FILE] [--max-size BYTES]

  It listens on 127.0.0.1 on a port of its own choosing (bind to port 0, so
  there is no race for the port) and prints one ready line on stdout:
  ``wsutil ready port=PORT pid=PID``. SIGTERM stops it (exit 0).

  * ``echo`` (default): every message comes back as it arrived (text as
    text, binary as binary). The text message ``cmd:ping`` is the one
    exceptions: ``cmd:ping`` makes the backend ping the client, wait for its
    pong and answer ``pong-received``; ``cmd:flood COUNT SIZE`` makes it send
    COUNT binary messages of SIZE bytes (a multiple of 32) as fast as the
    connection takes them, then the text ``{"sent": BYTES, "sha256": HEX}``
    (HEX: the hash of one message; all COUNT are the same).
  * ``sink``: binary messages are counted and hashed, nothing is echoed; the
    text message ``done`` is answered with JSON
    ``{"bytes": N, "messages": M, "sha256": HEX}``.
  * ``--close-after N``: after handling N messages the backend starts the
    close handshake with ``--close-code``/``--close-reason``.
  * ``--refuse STATUS``: upgrade requests are answered STATUS (e.g. 403 or
    200) with a short text body instead of a 101.
  * ``--slow SECONDS``: sleep that long before each read of a message (and
    keep at most one received message queued), so that the backend drains
    its socket slowly and back-pressure has to act.
  * ``--record FILE``: one JSON line per event, flushed at once:
    ``{"ev": "connect", "conn": K, "path": ..., "headers": [[name, value], ...]}``,
    ``{"ev": "message", "conn": K, "type": "text"|"binary", "size": N}``,
    ``{"ev": "close", "conn": K, "code": C, "reason": R}``,
    ``{"ev": "http", "path": ..., "headers": [...]}`` (a plain request).
  * A request that is not an upgrade (no ``upgrade`` in ``Connection``) gets
    ``200`` with JSON ``{"path": ..., "headers": [[name, value], ...]}`` (then
    the backend closes that connection: websockets does so after any
    non-101 answer).

  Compression (permessage-deflate) and keepalive pings are off, so that the
  bytes on the wire are the bytes the test sent and an idle tunnel is idle.

- Imported, it gives the tests `WsBackend` (start the script as a subprocess,
  wait for its ready line, read its records, stop it by PID) and a few client
  helpers (`ws_connect`, `run`).
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PYTHON = "/usr/bin/python3"
READY = "wsutil ready"

# --------------------------------------------------------------------------
# the backend (script side)


def _parse_args(argv):
    p = argparse.ArgumentParser(description="WebSocket backend for levee's tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=("echo", "sink"), default="echo")
    p.add_argument("--close-after", type=int, default=0)
    p.add_argument("--close-code", type=int, default=1000)
    p.add_argument("--close-reason", default="")
    p.add_argument("--refuse", type=int, default=0)
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--record", default="")
    p.add_argument("--max-size", type=int, default=256 * 1024 * 1024)
    return p.parse_args(argv)


class _Recorder:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None

    def __call__(self, **event):
        if self.f is not None:
            self.f.write(json.dumps(event) + "\n")
            self.f.flush()


def _is_upgrade(headers):
    tokens = []
    for v in headers.get_all("Connection"):
        tokens += [t.strip().lower() for t in v.split(",")]
    return "upgrade" in tokens


async def _serve(args):
    import http

    import websockets

    record = _Recorder(args.record)
    counter = [0]

    async def process_request(path, headers):
        raw = [list(kv) for kv in headers.raw_items()]
        if not _is_upgrade(headers):
            record(ev="http", path=path, headers=raw)
            body = json.dumps({"path": path, "headers": raw}).encode()
            return http.HTTPStatus.OK, [("Content-Type", "application/json")], body
        if args.refuse:
            record(ev="refused", path=path, headers=raw, status=args.refuse)
            return (http.HTTPStatus(args.refuse), [("Content-Type", "text/plain")],
                    b"upgrade refused by wsutil\n")
        return None

    async def handler(ws):
        counter[0] += 1
        conn = counter[0]
        record(ev="connect", conn=conn, path=ws.path,
               headers=[list(kv) for kv in ws.request_headers.raw_items()])
        handled = 0
        total = 0
        digest = hashlib.sha256()
        try:
            while True:
                if args.slow:
                    await asyncio.sleep(args.slow)
                msg = await ws.recv()
                is_text = isinstance(msg, str)
                record(ev="message", conn=conn, type="text" if is_text else "binary",
                       size=len(msg))
                if args.mode == "sink":
                    if is_text and msg == "done":
                        await ws.send(json.dumps({"bytes": total, "messages": handled,
                                                  "sha256": digest.hexdigest()}))
                    elif not is_text:
                        total += len(msg)
                        digest.update(msg)
                        handled += 1
                    continue
                if is_text and msg.startswith("cmd:flood "):
                    _cmd, count, size = msg.split()
                    block = hashlib.sha256(msg.encode()).digest() * (int(size) // 32)
                    for _ in range(int(count)):
                        await ws.send(block)
                    await ws.send(json.dumps({"sent": int(count) * len(block),
                                              "sha256": hashlib.sha256(block).hexdigest()}))
                elif is_text and msg == "cmd:ping":
                    waiter = await ws.ping(b"from-backend")
                    await asyncio.wait_for(waiter, 20)
                    await ws.send("pong-received")
                else:
                    await ws.send(msg)
                handled += 1
                if args.close_after and handled >= args.close_after:
                    await ws.close(args.close_code, args.close_reason)
                    break
        except websockets.ConnectionClosed:
            pass
        finally:
            record(ev="close", conn=conn, code=ws.close_code, reason=ws.close_reason)

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await websockets.serve(
        handler, args.host, args.port, process_request=process_request,
        compression=None, ping_interval=None, close_timeout=2, max_size=args.max_size,
        max_queue=1 if args.slow else 32, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    print(f"{READY} port={port} pid={os.getpid()}", flush=True)
    await stop
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 5)
    except asyncio.TimeoutError:
        pass


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(_serve(args))
    return 0


# --------------------------------------------------------------------------
# the test side

DEADLINE = 20.0


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (ImportError, OSError, AttributeError):
        pass


class WsBackend:
    """The WebSocket backend above as a subprocess (stdout/stderr in files in
    `workdir`). Stop it with stop() (SIGTERM, then SIGKILL) or kill()
    (SIGKILL at once), always by its PID."""

    def __init__(self, workdir, name="ws", args=(), record=True):
        self.workdir = Path(workdir)
        self.name = name
        self.record_path = self.workdir / f"{name}.events.jsonl" if record else None
        self.args = [str(a) for a in args]
        if self.record_path is not None:
            self.args += ["--record", str(self.record_path)]
        self.out_path = self.workdir / f"{name}.stdout"
        self.err_path = self.workdir / f"{name}.stderr"
        self.port = None
        self.proc = None

    def start(self, timeout=DEADLINE):
        cmd = [PYTHON, str(Path(__file__).resolve()), *self.args]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=str(self.workdir), start_new_session=True,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith(READY):
                    fields = dict(f.split("=", 1) for f in line.split()[2:])
                    self.port = int(fields["port"])
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(f"wsutil backend {self.name} exited with code "
                                     f"{self.proc.returncode} at start:\n{self.stderr()[-2000:]}")
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"wsutil backend {self.name} printed no ready line in {timeout}s")

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stderr(self):
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def events(self, ev=None):
        """The recorded events so far (complete lines only), optionally of one kind."""
        if self.record_path is None:
            raise AssertionError("this backend records nothing (record=False)")
        try:
            text = self.record_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n")[:-1]:  # the last piece may be half written
            if line.strip():
                e = json.loads(line)
                if ev is None or e["ev"] == ev:
                    out.append(e)
        return out

    def wait_events(self, ev, n=1, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while True:
            got = self.events(ev)
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {n} '{ev}' "
                                     f"event(s) from {self.name}; have: {self.events()[-10:]}")
            time.sleep(0.02)

    def kill(self):
        """SIGKILL, by PID."""
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """SIGTERM, wait up to 5 s, then SIGKILL; by PID."""
        if self.proc is None:
            return
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def ws_connect(port, path="/", host="127.0.0.1", **kw):
    """websockets.connect to levee (or a backend) with the tests' defaults: no
    compression, no keepalive pings, no message size limit, generous timeouts."""
    import websockets

    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", DEADLINE)
    kw.setdefault("close_timeout", 10)
    return websockets.connect(f"ws://{host}:{port}{path}", **kw)


def run(coro, timeout=120):
    """Run a coroutine to completion on a new event loop, with an overall deadline."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


if __name__ == "__main__":
    sys.exit(main())
