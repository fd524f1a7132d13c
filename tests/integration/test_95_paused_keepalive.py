"""Regression: a keep-alive client whose request body ended in the very read
that made levee stop reading it (the backend was behind) stayed "paused" after
its response: levee never read the next request on that connection, and no
timer was armed to close it. Seen as a rare stall of the 256 MiB upload test
and of the 8 MiB TLS mirror test (their second request hung).

The pause boundary falls on the body's last read only now and then, so the
scenario is repeated: a backend that reads slowly makes levee pause and resume
its client many times per request, with body sizes swept across a read size.
On the old code about one request in ten hung (so 40 requests hang somewhere
almost surely); every one must be answered now.
"""

import time

from harness import build_request, pattern_bytes

MiB = 1024 * 1024

READ_PIECE = 64 * 1024


def slow_reader(conn):
    """Reads each body 64 KiB at a time with a short sleep between reads,
    then answers with its length."""
    while True:
        req = conn.read_request(body=False)
        if req is None:
            return
        state = {"since": 0}

        def sink(piece):
            state["since"] += len(piece)
            if state["since"] >= READ_PIECE:
                state["since"] = 0
                time.sleep(0.002)

        conn.read_body(req, time.monotonic() + 60, sink=sink)
        conn.respond_json({"length": req.body_length})


def test_a_request_body_ending_while_paused_does_not_stall_the_next_request(h):
    b = h.scripted(slow_reader, id="slow")
    lv = h.levee(f"""
        backends:
          - id: slow
            url: {b.url}
    """)
    c = lv.client(timeout=60)
    body = pattern_bytes(2 * MiB + 40 * 7 * 1024, seed=95)
    for i in range(40):
        size = 1 * MiB + i * 7 * 1024 + i  # sweeps the last read's alignment
        c.send(build_request("POST", f"/r{i}", [("Content-Length", str(size))]) + body[:size])
        resp = c.read_response(timeout=60)
        assert resp.status == 200, (i, resp)
        assert resp.json() == {"length": size}, i
