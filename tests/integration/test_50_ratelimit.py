"""50 — rate limits (local store): the spec's snippet, per-client and global
limits, burst and refill of the token bucket, the sliding window at window
edges, client keys (header, trusted proxies), the 429 answer and its fields,
metrics, and the bounded client table.

Timing: rates are checked by counting what was admitted over a measured
period against rate × time + burst, with margins; the client never has to
send at a precise rate. Upper bounds use the wall time the client saw (every
check levee made falls inside it); lower bounds subtract the time the client
was not asking (a pause longer than a full bucket's refill loses tokens).
Exact counts are only asserted where the refill is slow enough (seconds per
token) that the elapsed time cannot add one.
"""

import bisect
import re
import socket
import threading
import time

from harness import build_request, error_body, http_get

PEER_A = "127.0.0.1"
PEER_B = "127.0.0.2"  # a second loopback source address: another client

POLICY_ITEM = r'"(?P<name>[a-z]+)";q=(?P<q>\d+);w=(?P<w>\d+)'
LIMIT_ITEM = r'"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)'


# --------------------------------------------------------------------------
# helpers


def backend_yaml(h, id="b1"):
    d = h.demo(id)
    return d, f"backends:\n  - id: {id}\n    url: {d.url}\n"


def metrics(lv):
    """Prometheus text from levee's admin port, as {"name{labels}": value}."""
    resp = http_get(lv.admin_port, "/metrics", {"Host": f"127.0.0.1:{lv.admin_port}"})
    assert resp.status == 200, resp
    out = {}
    for line in resp.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def sf_list(value, item_re):
    """The items of a Structured Field List of `"name";k=int;k=int` items
    (draft-ietf-httpapi-ratelimit-headers), by name; fails on anything else."""
    assert value is not None, "field missing"
    items = {}
    for part in value.split(","):
        m = re.fullmatch(item_re, part.strip())
        assert m, f"{part.strip()!r} (in {value!r}) is not a {item_re} item"
        d = {k: (int(v) if v.isdigit() else v) for k, v in m.groupdict().items()}
        items[d.pop("name")] = d
    return items


def pipelined(client, n, target="/p", headers=None):
    """n GETs in one write on one connection; (responses, seconds from the
    write to the last response)."""
    t0 = time.monotonic()
    client.send(b"".join(build_request("GET", f"{target}?i={i}", headers) for i in range(n)))
    resps = [client.read_response() for _ in range(n)]
    return resps, time.monotonic() - t0


def statuses(resps):
    return [r.status for r in resps]


class Hammer:
    """Sequential keep-alive GETs as fast as one connection goes, for
    `seconds`, recording (sent, received, status) of each."""

    def __init__(self, lv, source_ip=None, headers=None, target="/h"):
        self.client = lv.client(source_ip=source_ip)
        self.headers = headers
        self.target = target
        self.log = []  # (sent, received, status)

    def run(self, seconds):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            i += 1
            sent = time.monotonic()
            resp = self.client.get(f"{self.target}?n={i}", self.headers, timeout=20)
            assert resp.status in (200, 429), resp
            self.log.append((sent, time.monotonic(), resp.status))
        return self

    def admitted(self):
        return sum(1 for _s, _r, st in self.log if st == 200)

    def span(self):
        return self.log[-1][1] - self.log[0][0]


def lost_refill(logs, full_after):
    """Seconds in which nobody asked for longer than a bucket takes to fill
    (`full_after` = burst / rate): tokens refilled then overflow and are lost.
    `logs` are Hammer logs (possibly several, run concurrently)."""
    events = sorted((s, r) for log in logs for s, r, _st in log)
    lost, busy_until = 0.0, events[0][0]
    for sent, received in events:
        gap = sent - busy_until
        if gap > full_after:
            lost += gap - full_after
        busy_until = max(busy_until, received)
    return lost


def run_parallel(hammers, seconds):
    errors = []

    def one(hm):
        try:
            hm.run(seconds)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(hm,)) for hm in hammers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not errors, errors
    return hammers


# --------------------------------------------------------------------------
# configuration and the basics


SPEC_SNIPPET = """
rate_limit:
  requests_per_second: 100      # global, all clients together
  burst: 200
  per_client:
    requests_per_second: 10
"""


def test_spec_snippet_loads_and_limits_each_client_to_its_burst_of_10(h):
    d, backends = backend_yaml(h)
    checked = h.check(backends + SPEC_SNIPPET)
    assert checked.returncode == 0, checked.stderr

    lv = h.levee(backends + SPEC_SNIPPET)
    resps, elapsed = pipelined(lv.client(), 16)
    st = statuses(resps)
    # per-client burst defaults to its rate (10); refill is 1 per 100 ms
    assert st[:10] == [200] * 10, st
    assert st.count(200) <= 10 + int(elapsed * 10) + 1, (st, elapsed)
    assert 429 in st, f"no request refused after the per-client burst of 10: {st}"
    refused = resps[st.index(429)]
    policy = sf_list(refused.headers.get("RateLimit-Policy"), POLICY_ITEM)
    assert policy["client"] == {"q": 10, "w": 1}, policy
    # the global limit (100/s, burst 200) is far away: another client passes
    other = lv.client(source_ip=PEER_B).get("/other")
    assert other.status == 200, other


def test_per_client_limit_isolates_clients_by_address(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 3
""")
    a = lv.client(source_ip=PEER_A)
    resps, _ = pipelined(a, 5)
    assert statuses(resps) == [200, 200, 200, 429, 429]

    b = lv.client(source_ip=PEER_B)
    resps, _ = pipelined(b, 3)
    assert statuses(resps) == [200, 200, 200], "client B was limited by client A's requests"
    assert a.get("/again").status == 429, "client A is over its limit and stays so"
    # a new connection from A is the same client
    assert lv.client(source_ip=PEER_A).get("/new-conn").status == 429


def test_burst_passes_exactly_burst_requests_at_once_then_429(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2   # one token per 5 s: no refill while the burst is sent
    burst: 5
""")
    resps, elapsed = pipelined(lv.client(), 12)
    st = statuses(resps)
    assert st[:5] == [200] * 5, st
    assert st.count(200) == 5 + int(elapsed * 0.2), (st, elapsed)
    assert st[5:] == [429] * (12 - st.count(200)), st


def test_tokens_refill_at_the_configured_rate(h):
    rate, burst = 20.0, 5
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + f"""
rate_limit:
  per_client:
    requests_per_second: {rate:g}
    burst: {burst}
""")
    hm = Hammer(lv).run(2.5)
    got, span = hm.admitted(), hm.span()
    assert len(hm.log) > 3 * got, (
        f"{len(hm.log)} requests for {got} admitted: the client did not keep the limiter busy")
    upper = burst + rate * span * 1.1 + 2
    lower = (burst + rate * (span - lost_refill([hm.log], burst / rate))) * 0.85 - 2
    assert lower <= got <= upper, (
        f"{got} admitted in {span:.2f}s at {rate:g}/s burst {burst}: expected "
        f"{lower:.0f}..{upper:.0f}")
    # after the burst, admissions keep coming throughout, not all at the start
    times = [r for _s, r, st in hm.log if st == 200]
    second_half = [t for t in times if t >= hm.log[0][0] + span / 2]
    assert len(second_half) >= rate * span / 2 * 0.6 - 2, (
        f"only {len(second_half)} admitted in the second half of {span:.2f}s")


def test_global_limit_counts_all_clients_together(h):
    rate, burst = 20.0, 5
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + f"""
rate_limit:
  requests_per_second: {rate:g}
  burst: {burst}
""")
    # deterministic part: burst shared between clients
    slow = h.levee(backends + """
rate_limit:
  requests_per_second: 0.2
  burst: 4
""")
    resps_a, _ = pipelined(slow.client(source_ip=PEER_A), 3)
    resps_b, _ = pipelined(slow.client(source_ip=PEER_B), 3)
    assert statuses(resps_a) == [200, 200, 200]
    assert statuses(resps_b) == [200, 429, 429], "the global burst is not shared by clients"
    assert error_body(resps_b[1])["error"] == "rate_limited"

    # rate part: two clients hammering concurrently share one allowance
    hms = run_parallel([Hammer(lv, source_ip=PEER_A), Hammer(lv, source_ip=PEER_B)], 2.5)
    got = sum(hm.admitted() for hm in hms)
    start = min(hm.log[0][0] for hm in hms)
    span = max(hm.log[-1][1] for hm in hms) - start
    upper = burst + rate * span * 1.1 + 2
    lower = (burst + rate * (span - lost_refill([hm.log for hm in hms], burst / rate))) * 0.85 - 2
    assert lower <= got <= upper, (
        f"{got} admitted for two clients in {span:.2f}s with a global {rate:g}/s burst {burst}: "
        f"expected {lower:.0f}..{upper:.0f} (per client: {[hm.admitted() for hm in hms]})")
    m = metrics(lv)
    refused = sum(len(hm.log) - hm.admitted() for hm in hms)
    assert m['rate_limit_rejected_total{scope="global"}'] == refused
    assert m['rate_limit_rejected_total{scope="client"}'] == 0


# --------------------------------------------------------------------------
# algorithms


def test_token_bucket_vs_sliding_window_at_once_and_at_window_edges(h):
    """Same numbers, two algorithms: rate 20/s, burst 3, window 1 s.
    token_bucket lets `burst` (3) through at once; sliding_window lets
    rate × window (20) per window, and at a window edge it does not let a
    whole new window's worth through at once as a fixed window would: after a
    refusal, at most rate × d (+ rounding) pass within the next d seconds."""
    rate, window_limit = 20, 20
    _d, backends = backend_yaml(h)
    common = f"""
  per_client:
    requests_per_second: {rate}
    burst: 3
  window: 1s
"""
    bucket = h.levee(backends + "rate_limit:\n  algorithm: token_bucket\n" + common)
    sliding = h.levee(backends + "rate_limit:\n  algorithm: sliding_window\n" + common)

    resps, elapsed = pipelined(bucket.client(), 30)
    st = statuses(resps)
    assert st[:3] == [200] * 3, st
    assert st.count(200) <= 3 + int(elapsed * rate) + 1, (st, elapsed)

    resps, elapsed = pipelined(sliding.client(), 30)
    st = statuses(resps)
    assert window_limit <= st.count(200) <= window_limit + int(elapsed * rate) + 1, (
        f"sliding window (20 per 1 s) admitted {st.count(200)} of 30 sent at once "
        f"in {elapsed:.3f}s: {st}")

    # window edges: hammer over >= 2 window boundaries
    hm = Hammer(sliding).run(2.3)
    assert len(hm.log) >= 100, f"only {len(hm.log)} requests in 2.3 s: the client is too slow"
    d = 0.25
    bound = rate * d + 3
    log = hm.log
    admitted = [(i, r) for i, (_s, r, st) in enumerate(log) if st == 200]
    indexes = [j for j, _r in admitted]
    recv_times = [r for _j, r in admitted]
    worst = (0, 0.0)
    for i, (sent_i, _r, st_i) in enumerate(log):
        if st_i != 429:
            continue
        # admitted after request i (later index) and received by sent_i + d
        lo = bisect.bisect_right(indexes, i)
        hi = bisect.bisect_right(recv_times, sent_i + d)
        n = max(0, hi - lo)
        if n > worst[0]:
            worst = (n, sent_i - log[0][0])
    assert worst[0] <= bound, (
        f"{worst[0]} requests admitted within {d}s after a refusal (at +{worst[1]:.2f}s): "
        f"a sliding window of 20/s allows about {rate * d:.0f}; a fixed window lets a whole "
        f"window (20) through at its start")
    # and over the whole run, about the window's rate
    span = hm.span()
    assert hm.admitted() <= window_limit * (span + 1) + 2, (hm.admitted(), span)


# --------------------------------------------------------------------------
# client keys


def test_header_key_limits_each_key_separately_and_falls_back_to_the_address(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 2
    key: header:X-API-Key
""")
    def run(source, key, n):
        hdrs = [("X-API-Key", key)] if key is not None else None
        resps, _ = pipelined(lv.client(source_ip=source), n, headers=hdrs)
        return statuses(resps)

    assert run(PEER_A, "alpha", 3) == [200, 200, 429]
    assert run(PEER_A, "beta", 2) == [200, 200], "key beta was limited by key alpha"
    # the key, not the address: alpha from another address is still over its limit
    assert run(PEER_B, "alpha", 1) == [429]
    # no header: limited by address, apart from every key
    assert run(PEER_A, None, 3) == [200, 200, 429]
    assert run(PEER_B, None, 2) == [200, 200], "requests without the header share one limit"
    # a header value that looks like an address is still a key, not that address
    assert run(PEER_B, "127.0.0.1", 1) == [200]
    assert run(PEER_B, "ip:127.0.0.1", 1) == [200]
    # an empty header counts as no header (the address PEER_A, already over)
    assert run(PEER_A, "", 1) == [429]


def test_trusted_proxies_limit_the_client_named_in_x_forwarded_for(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 2
    trusted_proxies: ["127.0.0.0/31", "::1"]   # 127.0.0.1 (PEER_A), not 127.0.0.2
""")
    def run(source, xff, n):
        hdrs = [("X-Forwarded-For", xff)] if xff is not None else None
        resps, _ = pipelined(lv.client(source_ip=source), n, headers=hdrs)
        return statuses(resps)

    # from the trusted proxy: the client is 9.9.9.9
    assert run(PEER_A, "9.9.9.9, 127.0.0.1", 3) == [200, 200, 429]
    # another client behind the same proxy is independent
    assert run(PEER_A, "8.8.8.8, 127.0.0.1", 2) == [200, 200]
    # what a client claims left of the last untrusted hop is not believed
    assert run(PEER_A, "1.2.3.4, 9.9.9.9", 1) == [429]
    # two header lines are one list
    c = lv.client(source_ip=PEER_A)
    resp = c.get("/two-lines", [("X-Forwarded-For", "7.7.7.7"), ("X-Forwarded-For", "9.9.9.9")])
    assert resp.status == 429, "X-Forwarded-For on two lines: the rightmost is 9.9.9.9"
    # the proxy itself, without the header, is a client of its own
    assert run(PEER_A, None, 2) == [200, 200]

    # from an untrusted peer the header is ignored: limited by its own address
    assert run(PEER_B, "9.9.9.9", 2) == [200, 200], "an untrusted peer's XFF was believed"
    assert run(PEER_B, "6.6.6.6", 1) == [429], "an untrusted peer escaped its limit with XFF"


# --------------------------------------------------------------------------
# the 429 answer


def test_429_has_json_retry_after_ratelimit_fields_and_keeps_the_connection(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  requests_per_second: 1000
  burst: 2000
  per_client:
    requests_per_second: 1
    burst: 2
""")
    c = lv.client()
    resps, _ = pipelined(c, 3)
    assert statuses(resps) == [200, 200, 429]
    refused = resps[2]
    assert refused.reason.lower().startswith("too many"), refused
    body = error_body(refused)
    assert body["error"] == "rate_limited", body

    ra = refused.headers.get("Retry-After")
    assert ra is not None and re.fullmatch(r"[0-9]+", ra), f"Retry-After {ra!r}"
    assert 1 <= int(ra) <= 2, f"Retry-After {ra} for a bucket refilling 1/s"

    policy = sf_list(refused.headers.get("RateLimit-Policy"), POLICY_ITEM)
    assert policy["client"] == {"q": 2, "w": 2}, policy  # 2 requests per 2 s
    limit = sf_list(refused.headers.get("RateLimit"), LIMIT_ITEM)
    assert limit["client"]["r"] == 0, limit
    assert 1 <= limit["client"]["t"] <= 3, limit
    assert set(limit) <= set(policy), (limit, policy)

    # keep-alive: the same connection goes on, and Retry-After is honest
    assert "close" not in refused.headers.tokens("connection"), refused
    again = c.get("/still-open")
    assert again.status == 429, again
    time.sleep(int(ra) + 0.05)
    later = c.get("/after-retry-after")
    assert later.status == 200, f"refused again after waiting Retry-After ({ra}s): {later!r}"


def test_headers_true_puts_ratelimit_on_allowed_responses_and_default_does_not(h):
    _d, backends = backend_yaml(h)
    cfg = """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 3
"""
    with_fields = h.levee(backends + cfg + "  headers: true\n")
    plain = h.levee(backends + cfg)

    resps, _ = pipelined(with_fields.client(), 4)
    assert statuses(resps) == [200, 200, 200, 429]
    remaining = []
    for r in resps[:3]:
        policy = sf_list(r.headers.get("RateLimit-Policy"), POLICY_ITEM)
        assert policy["client"]["q"] == 3, policy
        limit = sf_list(r.headers.get("RateLimit"), LIMIT_ITEM)
        remaining.append(limit["client"]["r"])
    assert remaining == [2, 1, 0], remaining

    resps, _ = pipelined(plain.client(), 4)
    assert statuses(resps) == [200, 200, 200, 429]
    for r in resps[:3]:
        assert "RateLimit" not in r.headers and "RateLimit-Policy" not in r.headers, r
    assert "RateLimit" in resps[3].headers and "RateLimit-Policy" in resps[3].headers, (
        "the fields are always on a 429")


def test_refused_requests_never_reach_the_backend(h):
    d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  per_client:
    requests_per_second: 0.2
    burst: 3
""")
    before = d.stats()["requests"]
    resps, _ = pipelined(lv.client(), 10)
    post = lv.client(source_ip=PEER_B)
    post_resps = [post.request("POST", "/upload", body=b"x" * 10) for _ in range(3)]
    passed = statuses(resps).count(200) + statuses(post_resps).count(200)
    assert statuses(resps) == [200] * 3 + [429] * 7
    assert statuses(post_resps)[:3] == [200, 200, 200]
    extra = lv.client(source_ip=PEER_B).request("POST", "/upload", body=b"y" * 10)
    assert extra.status == 429, extra
    assert d.stats()["requests"] - before == passed, "the backend saw refused requests"


def test_metrics_count_refusals_by_scope(h):
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  requests_per_second: 0.2   # no refill during the test: every count is exact
  burst: 5
  per_client:
    requests_per_second: 0.2
    burst: 3
""")
    before = metrics(lv)
    assert before['rate_limit_rejected_total{scope="client"}'] == 0
    assert before['rate_limit_rejected_total{scope="global"}'] == 0
    got = []
    for source in (PEER_A, PEER_B, PEER_A, PEER_B):
        resps, _ = pipelined(lv.client(source_ip=source), 4)
        got.append(statuses(resps))
    # A: 3 pass (global 3/5), the 4th is over A's limit (client).
    # B: 2 pass (global 5/5), the 3rd is refused by the global limit, the 4th by
    #    B's own (its 3 tokens are spent: the client limit is checked first).
    # then everything is over its client limit.
    assert got == [[200, 200, 200, 429], [200, 200, 429, 429], [429] * 4, [429] * 4], got
    m = metrics(lv)
    assert m['rate_limit_rejected_total{scope="client"}'] == 10, m
    assert m['rate_limit_rejected_total{scope="global"}'] == 1, m
    assert m['levee_generated_responses_total{reason="rate_limited",status="429"}'] == 11, m


# --------------------------------------------------------------------------
# the client table stays bounded


def _pipelined_keys(port, keys, window, counts, errors):
    """Sends GETs with one X-API-Key each, `window` in flight at a time, on one
    connection; counts the statuses."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for at in range(0, len(keys), window):
            batch = keys[at:at + window]
            s.sendall(b"".join(b"GET /k HTTP/1.1\r\nHost: t\r\nX-API-Key: %s\r\n\r\n" % k
                               for k in batch))
            need = len(batch)
            while need:
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = bytes(buf[:end]).lower()
                    m = re.search(rb"\r\ncontent-length: *(\d+)", head)
                    total = end + 4 + (int(m.group(1)) if m else 0)
                    if len(buf) < total:
                        break
                    status = int(head[9:12])
                    counts[status] = counts.get(status, 0) + 1
                    del buf[:total]
                    need -= 1
                    if not need:
                        break
                if need:
                    data = s.recv(1 << 20)
                    if not data:
                        raise AssertionError("levee closed the connection")
                    buf += data
        s.close()
    except BaseException as e:
        errors.append(e)


def send_distinct_keys(lv, n, prefix, connections=4, window=200):
    counts, errors, threads = {}, [], []
    per = n // connections
    for c in range(connections):
        keys = [b"%s-%d-%d" % (prefix, c, i) for i in range(per)]
        t = threading.Thread(target=_pipelined_keys, args=(lv.port, keys, window, counts, errors))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    assert not errors, errors
    return counts


def test_client_table_stays_bounded_under_100000_distinct_keys(h):
    _d, backends = backend_yaml(h)
    # The global limit refuses (nearly) everything, after each request's key
    # has been looked up and stored in the client table: the flood costs the
    # backend nothing and runs at levee's own speed.
    # ASan keeps freed memory in a quarantine (256 MiB by default), which
    # would be measured as growth here: keep it small.
    lv = h.levee(backends + """
rate_limit:
  requests_per_second: 0.001
  burst: 1
  per_client:
    requests_per_second: 1
    key: header:X-API-Key
    max_clients: 1000
""", extra_asan="quarantine_size_mb=8")
    warm = send_distinct_keys(lv, 4000, b"warm")
    assert sum(warm.values()) == 4000, warm
    rss0 = lv.rss_bytes()
    t0 = time.monotonic()
    counts = send_distinct_keys(lv, 100_000, b"flood")
    took = time.monotonic() - t0
    rss1 = lv.rss_bytes()
    assert counts.get(429, 0) == 100_000, counts
    clients = metrics(lv)["levee_rate_limit_clients"]
    assert 500 <= clients <= 1100, f"levee_rate_limit_clients {clients:.0f} with max_clients 1000"
    growth = (rss1 - rss0) / 2**20
    assert growth < 30, (
        f"VmRSS grew by {growth:.1f} MiB over 100,000 distinct keys ({took:.1f}s) "
        f"with max_clients 1000")


def test_pipelined_refusals_to_a_slow_reader_keep_memory_bounded(h):
    """A client that pipelines requests that are refused, reading the 429s
    more slowly than it sends, must not make levee buffer without bound:
    refusing a flood has to be cheap. (levee stops reading a client whose
    proxied responses back up; its own answers need the same.)"""
    _d, backends = backend_yaml(h)
    lv = h.levee(backends + """
rate_limit:
  requests_per_second: 0.001
  burst: 1
""", extra_asan="quarantine_size_mb=8")
    lv.get("/first")  # the one request the global burst lets through
    rss0 = lv.rss_bytes()
    limit = 64 * 2**20
    s = socket.create_connection(lv.addr, timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stop = threading.Event()
    got = [0]

    def slow_reader():
        while not stop.is_set():
            try:
                data = s.recv(16384)
            except OSError:
                return
            if not data:
                return
            got[0] += len(data)
            time.sleep(0.01)

    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()
    chunk = b"GET /flood HTTP/1.1\r\nHost: t\r\n\r\n" * 500
    s.settimeout(0.2)
    sent, peak = 0, 0
    end = time.monotonic() + 3
    try:
        while time.monotonic() < end:
            try:
                sent += s.send(chunk)
            except socket.timeout:
                pass
            peak = max(peak, lv.rss_bytes() - rss0)
            if peak > limit:
                break  # enough: do not take the machine's memory
    finally:
        stop.set()
        s.close()
        reader.join(5)
    assert peak <= limit, (
        f"levee's VmRSS grew by {peak / 2**20:.0f} MiB (over {limit / 2**20:.0f}) while one "
        f"client pipelined {sent / 1e6:.1f} MB of refused requests and read "
        f"{got[0] / 1e6:.1f} MB of 429s")
