"""95 — running out of file descriptors (issue 11, finding 1).

levee started with a low RLIMIT_NOFILE and two workers is flooded with more
connections than it has descriptors, each sending one byte; normal requests
arrive during the flood; then the flood goes away. levee must serve again,
give its descriptors back, keep its log small and never spin. Before the fix
both workers looped in accept(2) at 100% CPU (libuv retries EMFILE at once),
closed connections stayed in CLOSE-WAIT and the "accept failed" line filled
the log.

limits.max_connections (default: derived from the descriptor limit) keeps
levee away from the limit; when it is configured too high, accept(2) fails
with EMFILE and levee backs off instead.
"""

import os
import resource
import socket
import time

from adminutil import Background, reload_via_sighup, scrape, wait_metric
from harness import DEADLINE, http_get, wait_for

NOFILE = 256  # levee's descriptor limit (soft and hard) in these tests
FLOOD = 400  # more connections than levee has descriptors
WORKERS = 2


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def config(backend, extra=""):
    return f"""
        workers: {WORKERS}
        backends:
          - id: b1
            url: {backend.url}
        timeouts:
          client_header: 2m
{extra}"""


def flood(lv, n=FLOOD):
    """n connections to levee that each send one byte and then say nothing."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(lv.addr, timeout=DEADLINE)
            s.sendall(b"G")
            socks.append(s)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        s.close()
    socks.clear()


def get_ok(lv, path):
    resp = http_get(lv.port, path, timeout=90)
    return resp.status


def accept_queue(port):
    """Connections waiting in the kernel's accept queues of the listening
    sockets on `port` (for a LISTEN socket /proc/net/tcp's rx_queue is it)."""
    n = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        cols = line.split()
        if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
            n += int(cols[4].split(":")[1], 16)
    return n


def accept_lines(lv):
    return [ln for ln in lv.stderr().splitlines() if "accept on" in ln and "failed" in ln]


def assert_idle_cpu(lv, seconds=2.0):
    """levee, idle, uses next to no CPU (a worker spinning in accept burns a
    whole core): measured over a window of `seconds`. An idle process only
    gets slower on a busy machine, so the bound cannot be broken by load."""
    c0, t0 = lv.cpu_seconds(), time.monotonic()
    time.sleep(seconds)  # a window to measure, not a wait for an event
    used, wall = lv.cpu_seconds() - c0, time.monotonic() - t0
    assert used < 0.25 * wall, f"levee used {used:.2f}s of CPU in {wall:.2f}s while idle"


def test_a_flood_beyond_the_fd_limit_waits_in_the_backlog_and_levee_recovers(h):
    b = h.demo("b1")
    lv = h.levee(config(b), preexec_fn=low_nofile)
    assert get_ok(lv, "/before") == 200
    base_fds = lv.fd_count()
    m = scrape(lv)
    limit = m.get("levee_max_connections")
    assert m.get("process_max_fds") == NOFILE
    assert 50 <= limit < NOFILE / 2, f"max_connections {limit} for {NOFILE} descriptors"
    assert "limits.max_connections: %d (auto" % limit in lv.stderr()

    during = []
    socks = flood(lv)
    try:
        # levee holds as many as the limit allows; the rest wait in the kernel
        wait_metric(lv, "levee_client_connections", limit)
        wait_metric(lv, "levee_accept_pauses_total", lambda v: v >= 1, reason="max_connections")
        wait_for(lambda: accept_queue(lv.port) == FLOOD - limit, what="the flood in the backlog")
        # ... and a backend connection for each of them would still fit
        assert lv.fd_count() + limit <= NOFILE, (lv.fd_count(), limit)
        during = [Background(get_ok, lv, f"/during{i}") for i in range(3)]
        wait_for(lambda: accept_queue(lv.port) == FLOOD - limit + 3,
                 what="the normal requests queued behind the flood")
        assert_idle_cpu(lv)
    finally:
        close_all(socks)

    for i, bg in enumerate(during):
        assert bg.result(timeout=120) == 200, f"request {i} made during the flood"
    assert get_ok(lv, "/after") == 200
    wait_for(lambda: lv.fd_count() <= base_fds + 10, 60,
             what=f"levee's descriptors back near {base_fds} (now {lv.fd_count()})")
    wait_metric(lv, "levee_client_connections", 0)
    m = scrape(lv)
    assert m.get("levee_accept_pauses_total", reason="fd_limit") == 0
    assert m.get("levee_accept_pauses_total", reason="error") == 0
    assert accept_lines(lv) == []
    assert_idle_cpu(lv)


def test_max_connections_above_the_fd_limit_backs_off_and_recovers(h):
    b = h.demo("b1")
    lv = h.levee(config(b, "        limits:\n          max_connections: 100000\n"),
                 preexec_fn=low_nofile)
    assert "limits.max_connections 100000 is more than the file descriptor limit (256)" \
        in lv.stderr()
    assert get_ok(lv, "/before") == 200
    base_fds = lv.fd_count()

    during = []
    t_start = time.monotonic()
    socks = flood(lv)
    try:
        # levee runs out of descriptors; every worker backs off
        wait_for(lambda: accept_lines(lv), what="an accept failure in the log")
        assert "too many open files" in accept_lines(lv)[0]
        c0, t0 = lv.cpu_seconds(), time.monotonic()
        # out of descriptors for over a second: the next line counts the ones suppressed
        wait_for(lambda: any("suppressed" in ln for ln in accept_lines(lv)), 30,
                 what="a rate-limited accept line with its suppressed count")
        used, wall = lv.cpu_seconds() - c0, time.monotonic() - t0
        assert used < 0.25 * wall + 0.5, (
            f"levee used {used:.2f}s of CPU in {wall:.2f}s while out of descriptors")
        during = [Background(get_ok, lv, f"/during{i}") for i in range(3)]
    finally:
        close_all(socks)

    for i, bg in enumerate(during):
        assert bg.result(timeout=120) == 200, f"request {i} made during the flood"
    assert get_ok(lv, "/after") == 200
    wait_for(lambda: lv.fd_count() <= base_fds + 10, 60,
             what=f"levee's descriptors back near {base_fds} (now {lv.fd_count()})")
    wait_metric(lv, "levee_client_connections", 0)
    elapsed = time.monotonic() - t_start

    # Each failed accept pauses its worker for 100 ms or more: the count is
    # bounded by the time that passed, however loaded the machine.
    pauses = scrape(lv).get("levee_accept_pauses_total", reason="fd_limit")
    assert 1 <= pauses <= WORKERS * (elapsed / 0.1 + 1), (pauses, elapsed)
    # one accept line a second at most, all workers together
    lines = accept_lines(lv)
    assert len(lines) <= elapsed + 2, (len(lines), elapsed)
    assert os.path.getsize(lv.process.err_path) < 64 * 1024
    assert_idle_cpu(lv)


def test_max_connections_holds_the_next_connection_until_one_closes(h):
    b = h.demo("b1")
    text = config(b, "        limits:\n          max_connections: 3\n")
    lv = h.levee(text)
    assert scrape(lv).get("levee_max_connections") == 3
    # the harness's readiness probe may still hold its slot for a moment
    wait_metric(lv, "levee_client_connections", 0)

    held = []
    for i in range(3):
        c = lv.client()
        assert c.get(f"/held{i}").status == 200
        held.append(c)
    # Several rounds, so that the freed slot and the waiting connection are
    # on different workers at least once (the kernel spreads connections).
    for rnd in range(6):
        extra = lv.client()
        extra.send(f"GET /extra{rnd} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_for(lambda: accept_queue(lv.port) == 1,
                 what=f"round {rnd}: the extra connection waiting in the backlog")
        assert scrape(lv).get("levee_client_connections") == 3
        held.pop(0).close()
        resp = extra.read_response(timeout=DEADLINE)
        assert resp.status == 200, f"round {rnd}: {resp!r}"
        held.append(extra)
        wait_for(lambda: accept_queue(lv.port) == 0, what="an empty backlog")
    assert scrape(lv).get("levee_accept_pauses_total", reason="max_connections") >= 1

    # a reload that raises the limit lets a waiting connection in at once
    extra = lv.client()
    extra.send(b"GET /after-reload HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: accept_queue(lv.port) == 1, what="the extra connection in the backlog")
    reload_via_sighup(lv, config(b, "        limits:\n          max_connections: 4\n"))
    assert extra.read_response(timeout=DEADLINE).status == 200
    assert scrape(lv).get("levee_max_connections") == 4
    assert scrape(lv).get("levee_client_connections") == 4
