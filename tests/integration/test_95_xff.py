"""95 — the per-client rate limit behind trusted proxies, against a hostile
X-Forwarded-For (issue 11, finding 4).

levee used to join the X-Forwarded-For fields into a 1,024-byte buffer: a
client that padded the header so that a made-up address ended exactly at byte
1,024 had the entries its trusted proxy appended cut off, and got a new bucket
with each made-up address (10 × 200 at 1 request/s). Entries that were not
addresses were taken as keys too, and an address spelled another way
(`::ffff:1.2.3.4`, `[…]:port`) was another client. With `key: header:NAME`,
values were cut at 253 bytes, so long values sharing a prefix shared a bucket.

Here 127.0.0.1 plays the trusted proxy: it sends what a client claimed,
followed by the address it saw. The limit refills one token per 100 s, so no
token comes back while a test runs; each scenario has its own client address
and so its own bucket.
"""

import time

import pytest

from harness import build_request

PROXY = "127.0.0.1"  # trusted
RATE = 0.01  # one token per 100 s
BURST = 2


def levee_with_limit(h, extra=""):
    d = h.demo("b1")
    return h.levee(f"""
backends:
  - id: b1
    url: {d.url}
rate_limit:
  per_client:
    requests_per_second: {RATE}
    burst: {BURST}
    trusted_proxies: ["{PROXY}"]
{extra}""")


def send(lv, header_lists, source=PROXY):
    """One GET per list of headers, pipelined on one connection from source;
    (statuses, seconds from the write to the last response)."""
    c = lv.client(source_ip=source)
    t0 = time.monotonic()
    c.send(b"".join(build_request("GET", f"/x?i={i}", hdrs) for i, hdrs in enumerate(header_lists)))
    st = [c.read_response().status for _ in header_lists]
    return st, time.monotonic() - t0


def assert_limited(st, elapsed, burst=BURST, what=""):
    """The burst passes, then the client is refused: at most the tokens that
    could have come back in `elapsed` (none in practice) pass on top."""
    assert st[:burst] == [200] * burst, (what, st)
    allowed = burst + int(elapsed * RATE)
    assert st.count(200) <= allowed, f"{what}: {st.count(200)} × 200 of {len(st)}, limit {allowed}: {st}"
    assert set(st) <= {200, 429}, (what, st)


def padded(end, r):
    """What a client claims: made-up hops that change with each request r, the
    last one ending exactly at byte `end` of the value."""
    parts, n, j = [], 0, 0
    while n + 20 < end:
        e = f"6.{r % 250}.{j // 250 % 250}.{j % 250}, "
        parts.append(e)
        n += len(e)
        j += 1
    fake = f"7.7.{r % 250}.{j % 250}"
    value = "".join(parts) + " " * (end - n - len(fake)) + fake
    assert len(value) == end and value.endswith(" " + fake)
    return value


def claim(length, r):
    """A claimed value of `length` bytes whose made-up address ends at byte
    `length`, or — for long ones — at byte 1,024, and again at the end."""
    if length <= 1100:
        return padded(length, r)
    return padded(1024, r) + ", " + padded(length - 1026, r + 100)


# --------------------------------------------------------------------------


@pytest.mark.parametrize("end", list(range(1018, 1031)) + [2048, 4000, 20000, 30000])
def test_padding_x_forwarded_for_around_1024_bytes_does_not_escape_the_limit(h, end):
    lv = levee_with_limit(h)
    real = "203.0.113.1"  # the client the proxy saw
    reqs = [[("X-Forwarded-For", claim(end, r) + ", " + real)] for r in range(10)]
    st, elapsed = send(lv, reqs)
    assert_limited(st, elapsed, what=f"made-up address ending at byte {end}")


def test_the_proxy_entry_in_its_own_field_after_a_20kb_field(h):
    lv = levee_with_limit(h)
    # the client's field: a made-up address ending at byte 1,024, then more
    claims = [claim(20000, r) for r in range(10)]
    reqs = [[("X-Forwarded-For", c), ("X-Forwarded-For", "203.0.113.77")] for c in claims]
    st, elapsed = send(lv, reqs)
    assert_limited(st, elapsed, what="two fields")
    # the same client, its address in one field: the same bucket
    st, _ = send(lv, [[("X-Forwarded-For", "1.1.1.1, 203.0.113.77")]])
    assert st == [429], "one client, two buckets"


def test_an_entry_that_is_not_an_address_keys_the_request_by_the_trusted_hop(h):
    lv = levee_with_limit(h)
    tokens = ["unknown", "_hidden", "garbage", "1.2.3", "01.2.3.4", "[1.2.3.4]", "fe80::1%eth0"]
    reqs = [[("X-Forwarded-For", f"203.0.113.{i + 1}, {tok}")] for i, tok in enumerate(tokens)]
    st, elapsed = send(lv, reqs)
    # every one is the proxy's own request: one bucket
    assert_limited(st, elapsed, what="non-address tokens at the right end")
    # and the proxy without the header is that client too
    st, _ = send(lv, [None])
    assert st == [429], "a token that is not an address was a key of its own"
    # a real client behind the same proxy is not affected
    st, _ = send(lv, [[("X-Forwarded-For", "unknown, 198.51.100.9")]] * 2)
    assert st == [200, 200], st


def test_spellings_of_one_address_are_one_client(h):
    lv = levee_with_limit(h)
    spellings = ["203.0.113.50", "::ffff:203.0.113.50", "[::ffff:203.0.113.50]:443",
                 "203.0.113.50:1234", "::FFFF:CB00:7132", "  203.0.113.50\t"]
    reqs = [[("X-Forwarded-For", s)] for s in spellings]
    st, elapsed = send(lv, reqs)
    assert_limited(st, elapsed, what=f"spellings {spellings}")
    v6 = ["2001:db8::50", "2001:DB8:0:0::0050", "[2001:db8::50]", "[2001:0db8::50]:80"]
    st, elapsed = send(lv, [[("X-Forwarded-For", s)] for s in v6])
    assert_limited(st, elapsed, what=f"spellings {v6}")


def test_long_header_keys_differing_past_the_old_cut_are_different_clients(h):
    lv = levee_with_limit(h, "    key: header:X-API-Key\n")
    base = "k" * 300
    # two values sharing their first 300 bytes: two clients
    for tail in ("A", "B", "C"):
        st, _ = send(lv, [[("X-API-Key", base + tail)]])
        assert st == [200], f"{base[:8]}…{tail}: limited by another key sharing its prefix"
    # each long key is still limited
    st, elapsed = send(lv, [[("X-API-Key", base + "A")]] * 3)
    assert st.count(200) <= 1 + int(elapsed * RATE), st
    big = "z" * 20000
    st, elapsed = send(lv, [[("X-API-Key", big)]] * 4)
    assert_limited(st, elapsed, what="a 20 KB key")
    st, _ = send(lv, [[("X-API-Key", big[:-1] + "y")]])
    assert st == [200], "a 20 KB key differing in its last byte shares a bucket"
