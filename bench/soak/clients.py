#!/usr/bin/python3
"""bench/soak/clients.py — the clients of the soak test (asyncio, stdlib only).

Runs, for --duration seconds, side by side, against one levee (http://127.0.0.1:PORT):

  load          --load-conns keep-alive connections sharing --rate requests/s: GET / and
                /echo, GET /bytes/64KiB and /chunked/100KiB, HEAD /, POST /upload with a
                1-64 KiB body (Content-Length or chunked with chunk extensions), and now
                and then 8 pipelined GETs; a connection whose answer was a 5xx, an error or
                `Connection: close` is replaced by a new one
  slow readers  --slow-readers connections, each asking for 16 MiB and reading it at
                64 KiB/s (a 16 KiB receive buffer), closing after 15-30 s mid-body, then again
  slow senders  --slow-senders connections, each POSTing 32 KiB at 10 KiB/s (1 KiB every
                100 ms, so one body arrives in 32 reads; half with Content-Length, half
                chunked with extensions), one in four giving up halfway and closing, then
                again. The whole body takes about 3.2 s: less than the soak's per_try,
                which counts from the start of the attempt, body upload included
  idle          --idle-conns connections: half send one keep-alive GET and then wait for
                levee to close them (timeouts.idle), half connect and send nothing (closed
                at timeouts.client_header); each reconnects after 0-2 s
  trickle       --tricklers connections sending a request head one byte every 500 ms
                (slowloris: levee answers 408 at timeouts.client_header), then again

Every second it rewrites --status FILE (JSON, replaced atomically) with the counts so far; at
the end it prints them on stdout. Counts: answers by status class, connection errors
(refused, reset, closed early), client-side timeouts; per behaviour. Every socket
operation has a deadline, so the run ends at most a few seconds after --duration.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import time

HEAD_LIMIT = 64 * 1024
IO_TIMEOUT = 15.0  # an answer or a read that takes longer is a client-side timeout


class BadResponse(Exception):
    pass


class Stats:
    def __init__(self):
        self.c = {}

    def add(self, key, n=1):
        self.c[key] = self.c.get(key, 0) + n

    def answer(self, kind, status):
        self.add(f"{kind}.{status // 100}xx")
        self.add(f"all.{status // 100}xx")

    def error(self, kind, err):
        name = {
            ConnectionRefusedError: "refused",
            ConnectionResetError: "reset",
            BrokenPipeError: "reset",
            asyncio.IncompleteReadError: "closed",
            asyncio.TimeoutError: "timeout",
            BadResponse: "bad",
        }.get(type(err), type(err).__name__)
        self.add(f"{kind}.err.{name}")
        self.add(f"all.err.{name}")


STATS = Stats()


async def connect(host, port, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 5)
        return await asyncio.open_connection(sock=sock, limit=HEAD_LIMIT)
    except BaseException:
        sock.close()
        raise


def close(writer):
    try:
        writer.transport.abort()
    except Exception:
        pass


async def read_head(reader):
    """Reads a response head, skipping 1xx; returns (status, {lowercase name: value})."""
    while True:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(lines[0][:80])
        status = int(parts[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if status >= 200 or status == 101:
            return status, fields


async def read_body(reader, fields, head_only, status, rate=None):
    """Reads (and drops) the body; at most rate bytes/s when rate is set. Returns
    whether the connection can be reused."""
    keep = "close" not in fields.get("connection", "").lower()
    if head_only or status in (204, 304):
        return keep

    async def take(n):
        while n > 0:
            k = min(n, 4096 if rate else 65536)
            got = await asyncio.wait_for(reader.read(k), IO_TIMEOUT)
            if not got:
                raise asyncio.IncompleteReadError(b"", n)
            n -= len(got)
            if rate:
                await asyncio.sleep(len(got) / rate)

    if "chunked" in fields.get("transfer-encoding", "").lower():
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await asyncio.wait_for(reader.readuntil(b"\r\n"), IO_TIMEOUT)) != b"\r\n":
                    pass
                return keep
            await take(size + 2)
    if "content-length" in fields:
        await take(int(fields["content-length"]))
        return keep
    while await asyncio.wait_for(reader.read(65536), IO_TIMEOUT):
        pass
    return False


async def exchange(reader, writer, head, body=b"", head_only=False):
    writer.write(head + body)
    await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
    status, fields = await read_head(reader)
    keep = await read_body(reader, fields, head_only, status)
    return status, keep and status < 500


def request(method, path, host, extra=""):
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Client: c{random.randrange(1000)}\r\n{extra}\r\n".encode()


def chunked(body, rnd):
    out = b""
    for i in range(0, len(body), 8192):
        piece = body[i : i + 8192]
        ext = b";n=%d" % i if rnd.random() < 0.5 else b""
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


# ---------------------------------------------------------------------------- behaviours


async def load_conn(args, end, i):
    """One keep-alive connection of the load: requests paced so that all of them together
    make --rate per second."""
    rnd = random.Random(args.seed * 1000 + i)
    host = f"127.0.0.1:{args.port}"
    gap = args.load_conns / args.rate
    conn = None
    next_at = time.monotonic() + rnd.random() * gap
    while time.monotonic() < end:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += gap
        try:
            if conn is None:
                conn = await connect("127.0.0.1", args.port)
            reader, writer = conn
            r = rnd.random()
            if r < 0.05:
                # Pipelined: 8 GETs written at once, the answers read in order.
                n = 8
                writer.write(b"".join(request("GET", f"/?p={k}", host) for k in range(n)))
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                keep = True
                for _ in range(n):
                    status, fields = await read_head(reader)
                    keep = await read_body(reader, fields, False, status) and status < 500
                    STATS.answer("load", status)
                    if not keep:
                        break
            else:
                head_only = False
                body = b""
                if r < 0.45:
                    head = request("GET", f"/?n={rnd.randrange(10**6)}", host)
                elif r < 0.55:
                    head = request("GET", "/echo", host)
                elif r < 0.62:
                    head = request("GET", "/bytes/64KiB", host)
                elif r < 0.67:
                    head = request("GET", "/chunked/100KiB?chunk=4KiB", host)
                elif r < 0.72:
                    head, head_only = request("HEAD", "/", host), True
                else:
                    data = b"x" * rnd.randrange(1024, 65536)
                    if rnd.random() < 0.5:
                        head = request("POST", "/upload", host, f"Content-Length: {len(data)}\r\n")
                        body = data
                    else:
                        head = request("POST", "/upload", host, "Transfer-Encoding: chunked\r\n")
                        body = chunked(data, rnd)
                status, keep = await exchange(reader, writer, head, body, head_only)
                STATS.answer("load", status)
            if not keep:
                close(conn[1])
                conn = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse,
                asyncio.LimitOverrunError, ValueError) as e:
            STATS.error("load", e)
            if conn:
                close(conn[1])
            conn = None
    if conn:
        close(conn[1])


async def slow_reader(args, end, i):
    rnd = random.Random(args.seed * 1000 + 100 + i)
    host = f"127.0.0.1:{args.port}"
    while time.monotonic() < end:
        conn = None
        try:
            conn = await connect("127.0.0.1", args.port, rcvbuf=16384)
            reader, writer = conn
            writer.write(request("GET", "/bytes/16MiB", host))
            await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
            status, fields = await read_head(reader)
            STATS.answer("slow_read", status)
            if status != 200:
                await asyncio.sleep(1)
            stop = min(end, time.monotonic() + rnd.uniform(15, 30))
            got = 0
            while time.monotonic() < stop and status == 200:
                chunk = await asyncio.wait_for(reader.read(4096), IO_TIMEOUT)
                if not chunk:
                    break
                got += len(chunk)
                await asyncio.sleep(len(chunk) / (64 * 1024))
            STATS.add("slow_read.bytes", got)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse,
                asyncio.LimitOverrunError, ValueError) as e:
            STATS.error("slow_read", e)
            await asyncio.sleep(1)
        finally:
            if conn:
                close(conn[1])


async def slow_sender(args, end, i):
    rnd = random.Random(args.seed * 1000 + 200 + i)
    host = f"127.0.0.1:{args.port}"
    size, piece = 32 * 1024, 1024
    while time.monotonic() < end:
        conn = None
        try:
            conn = await connect("127.0.0.1", args.port)
            reader, writer = conn
            use_chunked = rnd.random() < 0.5
            give_up = rnd.random() < 0.25
            extra = "Transfer-Encoding: chunked\r\n" if use_chunked else f"Content-Length: {size}\r\n"
            writer.write(request("POST", "/upload", host, extra))
            sent, early = 0, None
            while sent < size and time.monotonic() < end:
                if give_up and sent >= size // 2:
                    break
                data = b"y" * piece
                writer.write(b"%x;s=%d\r\n%s\r\n" % (piece, sent, data) if use_chunked else data)
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                sent += piece
                if sent == size:
                    break
                # 100 ms until the next piece, watching for an answer before the end.
                try:
                    early = await asyncio.wait_for(reader.read(4096), 0.1)
                    break
                except asyncio.TimeoutError:
                    pass
            if early is not None:  # levee answered (or closed) before the body was all sent
                STATS.add("slow_send.early")
                line = early.split(b"\r\n", 1)[0].split(b" ")
                if len(line) < 2 or not line[1].isdigit():
                    raise asyncio.IncompleteReadError(early, None)
                STATS.answer("slow_send", int(line[1]))
                await asyncio.sleep(1)
                continue
            if sent < size:  # gave up halfway, or the run is over
                STATS.add("slow_send.abandoned")
                continue
            if use_chunked:
                writer.write(b"0\r\n\r\n")
            status, _ = await exchange(reader, writer, b"")
            STATS.answer("slow_send", status)
            if status >= 500:
                await asyncio.sleep(1)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse,
                asyncio.LimitOverrunError, ValueError) as e:
            STATS.error("slow_send", e)
            await asyncio.sleep(1)
        finally:
            if conn:
                close(conn[1])


async def idle_conn(args, end, i):
    rnd = random.Random(args.seed * 1000 + 300 + i)
    host = f"127.0.0.1:{args.port}"
    silent = i % 2 == 1
    while time.monotonic() < end:
        conn = None
        try:
            conn = await connect("127.0.0.1", args.port)
            reader, writer = conn
            keep = True
            if not silent:
                status, keep = await exchange(reader, writer, request("GET", "/", host))
                STATS.answer("idle", status)
            # Wait for levee to close it (EOF), or for the end of the run.
            while keep and time.monotonic() < end:
                try:
                    data = await asyncio.wait_for(reader.read(1024), 1.0)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    STATS.add("idle.closed_by_levee")
                    break
                STATS.add("idle.answered")  # a silent one gets a 408 before the close
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse,
                asyncio.LimitOverrunError, ValueError) as e:
            STATS.error("idle", e)
        finally:
            if conn:
                close(conn[1])
        await asyncio.sleep(rnd.uniform(0.5, 2))


async def trickler(args, end, i):
    head = request("GET", f"/slow/{i}", f"127.0.0.1:{args.port}")
    while time.monotonic() < end:
        conn = None
        try:
            conn = await connect("127.0.0.1", args.port)
            reader, writer = conn
            answer = None
            for k in range(len(head)):
                if time.monotonic() >= end:
                    break
                writer.write(head[k : k + 1])
                await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
                # Wait 500 ms for the next byte, watching for levee's answer (408).
                try:
                    answer = await asyncio.wait_for(reader.read(4096), 0.5)
                    break
                except asyncio.TimeoutError:
                    pass
            if answer == b"":
                STATS.add("trickle.closed_without_answer")
            elif answer:
                line = answer.split(b"\r\n", 1)[0].split(b" ")
                if len(line) < 2 or not line[1].isdigit():
                    raise BadResponse(answer[:80])
                STATS.answer("trickle", int(line[1]))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse,
                asyncio.LimitOverrunError, ValueError) as e:
            STATS.error("trickle", e)
        finally:
            if conn:
                close(conn[1])
        await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------- main


def write_status(path, started):
    doc = dict(STATS.c, elapsed=round(time.monotonic() - started, 1))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, sort_keys=True)
    os.replace(tmp, path)


async def run(args):
    started = time.monotonic()
    end = started + args.duration
    tasks = []
    spawn = asyncio.get_running_loop().create_task
    tasks += [spawn(load_conn(args, end, i)) for i in range(args.load_conns)]
    tasks += [spawn(slow_reader(args, end, i)) for i in range(args.slow_readers)]
    tasks += [spawn(slow_sender(args, end, i)) for i in range(args.slow_senders)]
    tasks += [spawn(idle_conn(args, end, i)) for i in range(args.idle_conns)]
    tasks += [spawn(trickler(args, end, i)) for i in range(args.tricklers)]
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        if args.status:
            write_status(args.status, started)
    # Everything ends by itself (each step has a deadline); the bound is for safety.
    done, pending = await asyncio.wait(tasks, timeout=IO_TIMEOUT + 35)
    for t in pending:
        t.cancel()
        STATS.add("tasks_cancelled")
    for t in done:
        if t.exception() is not None:
            STATS.add(f"task_failed.{type(t.exception()).__name__}")
    if args.status:
        write_status(args.status, started)
    print(json.dumps(dict(STATS.c), sort_keys=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="levee's port on 127.0.0.1")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--rate", type=float, default=100, help="requests/s of the load (100)")
    ap.add_argument("--load-conns", type=int, default=16)
    ap.add_argument("--slow-readers", type=int, default=6)
    ap.add_argument("--slow-senders", type=int, default=6)
    ap.add_argument("--idle-conns", type=int, default=40)
    ap.add_argument("--tricklers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--status", help="JSON counts, rewritten every second")
    args = ap.parse_args()
    random.seed(args.seed)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
