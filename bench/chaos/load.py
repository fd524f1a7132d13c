#!/usr/bin/python3
"""bench/chaos/load.py — an open-loop HTTP/1.1 load generator (asyncio, stdlib only).

Requests are started on a fixed schedule — request i at start + i / rate — whether or not
the earlier ones have finished. A closed loop (N clients, each waiting for its answer
before sending the next request) slows down when the proxy stalls and so hides the stall
from its own percentiles; an open loop keeps arriving, as real clients do, and every
request's latency is measured from the moment it was *scheduled* to start (so a late
start, were the generator ever to fall behind, counts against the latency too, and the
generator reports it).

Mix: GET /?n=I (1 - post_ratio) and POST /upload with a small body (post_ratio), chosen by
a seeded random sequence, so every proxy gets the same sequence of requests.

Connections: a keep-alive pool per target. A request takes an idle connection (one the
proxy has not closed) or opens a new one (at most --max-conns open; a request waits for
one beyond that, and that wait is part of its latency). A connection goes back to the
pool only after a complete response without `Connection: close`.

A proxy that closes a client connection after an error must not be charged twice (once
for the error response, once for the next request on the dead connection): a connection
that carried a 5xx response is not reused (the next request opens a new one), and an idle
connection the proxy has closed (EOF seen, or unsolicited bytes waiting) is dropped before
use. Beyond that the client does what RFC 9110 (9.2.2) and RFC 9112 (9.3.1) allow and
curl and browsers do: a GET sent on a reused connection that ends before a single byte of
the answer arrives is sent once more on a new connection (counted as `resent`); a POST is
never re-sent (its failure is the client's failure).

Every request ends with a timeout (--timeout, measured from its scheduled start; counted
as a failure at that time), so the run ends by itself: at most duration + timeout.

Output (stdout or --out): JSON with the counts (ok = 2xx/3xx, 4xx, 5xx by code, timeouts,
connection errors by kind), latency percentiles over all requests (failures included at
their time to failure) and over successes, the achieved start rate and the schedule lag,
a per-second timeline, and the optional recovery (first success after a mark, and when the
failures stopped) and tail figures.
"""

import argparse
import asyncio
import json
import math
import random
import socket
import sys
import time
import urllib.parse

HEAD_LIMIT = 64 * 1024
IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")


class BadResponse(Exception):
    """The peer sent something that is not an HTTP/1.1 response we can read."""


class NoResponseYet(Exception):
    """The connection failed before a single byte of the response arrived."""

    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


class Pool:
    """Keep-alive connections to one host:port, at most max_conns open at a time."""

    def __init__(self, host, port, max_conns):
        self.host = host
        self.port = port
        self.max_conns = max_conns
        self.idle = []
        self.open = 0
        self.opened_total = 0
        self.peak_open = 0
        self.cond = asyncio.Condition()

    async def acquire(self, fresh=False):
        """Returns a Conn: an idle one if any (unless fresh), else a new one."""
        async with self.cond:
            while True:
                while self.idle and not fresh:
                    conn = self.idle.pop()
                    # Closed by the proxy while idle: not this request's business.
                    r, w = conn.reader, conn.writer
                    if r.at_eof() or w.is_closing() or reader_has_data(r):
                        self._drop(conn)
                        continue
                    return conn
                if self.open < self.max_conns:
                    self.open += 1
                    self.peak_open = max(self.peak_open, self.open)
                    break
                await self.cond.wait()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT)
        except BaseException:
            async with self.cond:
                self.open -= 1
                self.cond.notify()
            raise
        self.opened_total += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Conn(reader, writer)

    async def release(self, conn, reusable):
        async with self.cond:
            if reusable and not conn.writer.is_closing():
                self.idle.append(conn)
            else:
                self._drop(conn)
            self.cond.notify()

    def _drop(self, conn):
        self.open -= 1
        conn.writer.close()

    def close_all(self):
        for conn in self.idle:
            conn.writer.close()
        self.idle.clear()


class Conn:
    """One client connection."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.exchanges = 0  # complete responses read on it


def reader_has_data(reader):
    # Bytes waiting on an idle connection (an unsolicited response, say a 408) would be
    # read as the answer to the next request: such a connection is not reusable.
    buf = getattr(reader, "_buffer", None)
    return bool(buf)


async def read_response(reader, head_only):
    """Reads one response; returns (status, keep_alive). Raises NoResponseYet if the
    connection ends before any byte of it, BadResponse or IncompleteReadError after."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise NoResponseYet("eof") from None
        raise
    except (ConnectionResetError, BrokenPipeError):
        raise NoResponseYet("reset") from None
    except asyncio.LimitOverrunError:
        raise BadResponse("response head larger than 64 KiB") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadResponse("bad status line %r" % lines[0][:80])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    conn_tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
    keep_alive = parts[0] == "HTTP/1.1" and "close" not in conn_tokens
    if head_only or status in (204, 304) or 100 <= status < 200:
        return status, keep_alive
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, then the empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadResponse("bad Content-Length") from None
        await reader.readexactly(length)
    else:
        # Delimited by the end of the connection.
        await reader.read()
        keep_alive = False
    return status, keep_alive


class Target:
    def __init__(self, url, max_conns, post_size):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit("load.py: URL must be http://HOST:PORT[/PATH]")
        self.host = u.hostname
        self.port = u.port or 80
        self.prefix = u.path.rstrip("/")
        self.hostport = "%s:%d" % (self.host, self.port)
        self.pool = Pool(self.host, self.port, max_conns)
        self.post_body = (b"x" * 63 + b"\n") * (post_size // 64) + b"y" * (post_size % 64)

    def request(self, i, method):
        if method == "GET":
            return (
                "GET %s/?n=%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: levee-chaos-load\r\n"
                "Accept: */*\r\n\r\n" % (self.prefix, i, self.hostport)
            ).encode()
        head = (
            "POST %s/upload?n=%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: levee-chaos-load\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
            % (self.prefix, i, self.hostport, len(self.post_body))
        ).encode()
        return head + self.post_body


async def one_request(target, i, method):
    """Runs request i; returns (outcome, status, resent): outcome "http" (with the
    status), or "conn_<kind>" / "bad_response" (status 0); resent: sent a second time."""
    payload = target.request(i, method)
    resent = False
    while True:
        try:
            conn = await target.pool.acquire(fresh=resent)
        except ConnectionRefusedError:
            return "conn_refused", 0, resent
        except OSError:
            return "conn_other", 0, resent
        reusable = False
        try:
            try:
                conn.writer.write(payload)
                await conn.writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                raise NoResponseYet("reset") from None
            status, keep_alive = await read_response(conn.reader, method == "HEAD")
            conn.exchanges += 1
            # After a 5xx the next request starts on a new connection (see top).
            reusable = keep_alive and status < 500
            return "http", status, resent
        except NoResponseYet as e:
            if conn.exchanges > 0 and method in IDEMPOTENT and not resent:
                resent = True  # a stale keep-alive connection (see top)
                continue
            return "conn_" + e.kind, 0, resent
        except asyncio.IncompleteReadError:
            return "conn_truncated", 0, resent
        except (ConnectionResetError, BrokenPipeError):
            return "conn_reset", 0, resent
        except BadResponse:
            return "bad_response", 0, resent
        except (OSError, ValueError):
            return "conn_other", 0, resent
        finally:
            # On cancellation (timeout) too: a connection with a request in flight is
            # never reused.
            await asyncio.shield(target.pool.release(conn, reusable))


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (None if empty)."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)
    return sorted_values[k]


def latency_summary(values_s):
    v = sorted(values_s)
    out = {"n": len(v)}
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99)):
        x = percentile(v, p)
        out[name + "_ms"] = None if x is None else round(x * 1000, 3)
    out["max_ms"] = round(v[-1] * 1000, 3) if v else None
    out["mean_ms"] = round(sum(v) / len(v) * 1000, 3) if v else None
    return out


async def run(args):
    loop = asyncio.get_running_loop()
    target = Target(args.url, args.max_conns, args.post_size)
    n = int(round(args.rate * args.duration))
    rng = random.Random(args.seed)
    methods = ["POST" if rng.random() < args.post_ratio else "GET" for _ in range(n)]

    if args.start_at:
        # Even when we start late: the caller times its events (kills, restarts) from
        # start_at, and the offsets reported here must mean the same instants.
        t0 = loop.time() + (args.start_at - time.time())
    else:
        t0 = loop.time() + 0.05
    results = [None] * n
    latencies = [0.0] * n
    lags = [0.0] * n
    started_at = [0.0] * n
    tasks = set()

    async def timed(i, sched):
        try:
            outcome = await asyncio.wait_for(
                one_request(target, i, methods[i]),
                timeout=max(0.001, sched + args.timeout - loop.time()),
            )
            results[i] = outcome
        except asyncio.TimeoutError:
            results[i] = ("timeout", 0, False)
        latencies[i] = loop.time() - sched

    for i in range(n):
        sched = t0 + i / args.rate
        delay = sched - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = loop.time()
        started_at[i] = now
        lags[i] = now - sched
        task = loop.create_task(timed(i, sched))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    schedule_end = loop.time()
    if tasks:
        await asyncio.wait(set(tasks), timeout=args.timeout + 5)
    for task in list(tasks):
        task.cancel()
    target.pool.close_all()

    # ------------------------------------------------------------------ summary
    counts = {"requests": n, "ok": 0, "4xx": 0, "5xx": 0, "timeouts": 0, "conn_errors": 0,
              "other": 0}
    by_method = {}
    by_status = {}
    conn_kinds = {}
    resent = 0
    ok_lat = []
    for i, r in enumerate(results):
        if r is None:
            r = ("timeout", 0, False)
            results[i] = r
            latencies[i] = args.timeout
        outcome, status, was_resent = r
        resent += was_resent
        m = by_method.setdefault(methods[i], {"requests": 0, "failed": 0})
        m["requests"] += 1
        m["failed"] += not (outcome == "http" and status < 400)
        if outcome == "http":
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            if status < 400:
                counts["ok"] += 1
                ok_lat.append(latencies[i])
            elif status < 500:
                counts["4xx"] += 1
            else:
                counts["5xx"] += 1
        elif outcome == "timeout":
            counts["timeouts"] += 1
        elif outcome.startswith("conn_"):
            counts["conn_errors"] += 1
            conn_kinds[outcome[5:]] = conn_kinds.get(outcome[5:], 0) + 1
        else:
            counts["other"] += 1
            conn_kinds[outcome] = conn_kinds.get(outcome, 0) + 1

    def is_ok(r):
        return r[0] == "http" and r[1] < 400

    # Per-second timeline by scheduled start: [requests, ok].
    seconds = int(math.ceil(args.duration))
    timeline = [[0, 0] for _ in range(seconds)]
    for i, r in enumerate(results):
        s = min(seconds - 1, int(i / args.rate))
        timeline[s][0] += 1
        timeline[s][1] += is_ok(r)

    def offset(i):
        return i / args.rate

    extra = {}
    if args.tail_from is not None:
        idx = [i for i in range(n) if offset(i) >= args.tail_from]
        ok = sum(is_ok(results[i]) for i in idx)
        extra["tail"] = {"from_s": args.tail_from, "requests": len(idx),
                         "success_pct": round(100.0 * ok / len(idx), 3) if idx else None}
    if args.recovery_from is not None:
        # The first request at or after the mark from which every request started in the
        # next --recovery-window seconds succeeded; recovery = its offset - the mark.
        win = max(1, int(round(args.recovery_window * args.rate)))
        first = next((i for i in range(n) if offset(i) >= args.recovery_from), n)
        bad_suffix = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            bad_suffix[i] = bad_suffix[i + 1] + (not is_ok(results[i]))
        rec = None
        for i in range(first, n - win + 1):
            if bad_suffix[i] - bad_suffix[i + win] == 0:
                rec = offset(i) - args.recovery_from
                break
        # The first success that arrived after the mark (by completion time: a request
        # started just before the mark and retried onto a backend back already counts).
        done = [offset(i) + latencies[i] for i in range(n) if is_ok(results[i])]
        after = [t for t in done if t >= args.recovery_from]
        first_ok = min(after) - args.recovery_from if after else None
        extra["recovery"] = {"from_s": args.recovery_from, "window_s": args.recovery_window,
                             "seconds": None if rec is None else round(max(0.0, rec), 3),
                             "first_ok_s": None if first_ok is None else round(first_ok, 3)}

    span = started_at[-1] - started_at[0] if n > 1 else 0.0
    achieved = (n - 1) / span if span > 0 else float(n)
    lag_sorted = sorted(lags)
    lag_p99 = percentile(lag_sorted, 99) or 0.0
    lag_max = lag_sorted[-1] if lag_sorted else 0.0
    # Behind: the start rate is off by more than 1 %, or starts are late by more than
    # 10 ms at p99 (the proxies' p50 here is about a millisecond).
    behind = achieved < 0.99 * args.rate or lag_p99 > 0.010

    fail_lat = [latencies[i] for i in range(n)]
    report = {
        "url": args.url,
        "rate": args.rate,
        "duration_s": args.duration,
        "post_ratio": args.post_ratio,
        "timeout_s": args.timeout,
        "seed": args.seed,
        "counts": counts,
        "status": dict(sorted(by_status.items())),
        "by_method": by_method,
        "conn_error_kinds": conn_kinds,
        "resent": resent,
        "success_pct": round(100.0 * counts["ok"] / n, 3) if n else None,
        "latency_all": latency_summary(fail_lat),
        "latency_ok": latency_summary(ok_lat),
        "generator": {
            "achieved_start_rate": round(achieved, 2),
            "lag_p50_ms": round((percentile(lag_sorted, 50) or 0.0) * 1000, 3),
            "lag_p99_ms": round(lag_p99 * 1000, 3),
            "lag_max_ms": round(lag_max * 1000, 3),
            "behind": behind,
            "schedule_s": round(schedule_end - t0, 3),
            "connections_opened": target.pool.opened_total,
            "peak_open_connections": target.pool.peak_open,
        },
        "timeline": timeline,
    }
    report.update(extra)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="http://HOST:PORT (the proxy)")
    ap.add_argument("--rate", type=float, default=200.0, help="requests started per second (200)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of starts (20)")
    ap.add_argument("--post-ratio", type=float, default=0.2, help="fraction of POSTs (0.2)")
    ap.add_argument("--post-size", type=int, default=256, help="POST body bytes (256)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="client timeout per request, from its scheduled start (10 s)")
    ap.add_argument("--max-conns", type=int, default=1000, help="open connections at most (1000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the GET/POST sequence (1)")
    ap.add_argument("--start-at", type=float, default=None,
                    help="wall-clock time (epoch seconds) of the first start")
    ap.add_argument("--tail-from", type=float, default=None,
                    help="also report success %% of requests scheduled from this second on")
    ap.add_argument("--recovery-from", type=float, default=None,
                    help="also report how long after this second the first success came and"
                    " the failures stopped")
    ap.add_argument("--recovery-window", type=float, default=1.0,
                    help="seconds of all-successful starts that count as recovered (1)")
    ap.add_argument("--out", default="-", help="JSON output file (default stdout)")
    args = ap.parse_args()
    if args.rate <= 0 or args.duration <= 0 or not 0 <= args.post_ratio <= 1:
        ap.error("rate and duration must be > 0, post-ratio in 0..1")
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    g = report["generator"]
    print("load.py: %d requests, %.2f%% ok, start rate %.1f/s (target %.1f), lag p99 %.2f ms%s"
          % (report["counts"]["requests"], report["success_pct"], g["achieved_start_rate"],
             args.rate, g["lag_p99_ms"], ", BEHIND" if g["behind"] else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
