"""80 — the HTTP cache (RFC 9111) on the request path: hits and misses counted by
the requests the origin sees, freshness (max-age, s-maxage, Expires), what is
not stored (no-store, private, Authorization, Set-Cookie), Vary, revalidation
with 304, HEAD from a stored GET, client conditionals, request directives
(only-if-cached, no-cache, max-age), stale answers when the origin fails
(stale-if-error, serve_stale_on_error, must-revalidate), invalidation by POST,
collapsed forwarding, max_object_size, chunked re-framing, purge and metrics.

The origin is a scripted backend whose answer for each path the test sets
(status, header fields, body), and which counts the requests it gets.
"""

import collections
import json
import threading
import time
import email.utils

from adminutil import admin_get, admin_post, json_of, metric
from harness import wait_for
from scripted import serve

HTTP_DATE = email.utils.formatdate


class Origin:
    """Answers each path as `routes[path]` says: (status, headers, body) or a
    callable(req) returning one; counts requests by path."""

    def __init__(self, h, id="origin"):
        self.routes = {}
        self.counts = collections.Counter()
        self.seen = []
        self.lock = threading.Lock()
        self.gate = None  # a threading.Event the origin waits on before answering
        self.backend = h.scripted(serve(self._respond), id=id)

    def _respond(self, conn, req):
        path = req.target
        with self.lock:
            self.counts[path] += 1
            self.seen.append(req)
        if self.gate is not None:
            self.gate.wait(30)
        spec = self.routes.get(path.split("?")[0], (404, {"Cache-Control": "no-store"}, b"nf"))
        if callable(spec):
            spec = spec(req)
        status, headers, body = spec
        if isinstance(body, str):
            body = body.encode()
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        if any(k.lower() == "transfer-encoding" for k, _ in items):
            out = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                              for i in range(0, len(body), 7))
            conn.send(out.encode() + b"\r\n" + (b"" if req.method == "HEAD" else chunks + b"0\r\n\r\n"))
            return
        conn.respond(status, body, items, head=req.method == "HEAD")

    def count(self, path):
        with self.lock:
            return self.counts[path]


def levee_with(h, origin, cache="", extra="", **kw):
    return h.levee(f"""
        backends:
          - id: origin
            url: {origin.backend.url}
        cache:
          enabled: true
          max_size: 8MiB
          max_object_size: 64KiB
        {cache}
        {extra}
    """, **kw)


def get(lv, path, headers=None, method="GET"):
    c = lv.client()
    try:
        return c.request(method, path, headers or {})
    finally:
        c.close()


def cache_status(resp):
    return resp.headers.get("cache-status") or ""


def test_fresh_response_is_served_from_the_cache(h):
    o = Origin(h)
    o.routes["/a"] = (200, {"Cache-Control": "max-age=60", "Content-Type": "text/plain",
                            "ETag": '"v1"'}, "hello")
    lv = levee_with(h, o)
    first = get(lv, "/a")
    assert first.status == 200 and first.body == b"hello"
    assert "fwd=uri-miss" in cache_status(first) and "stored" in cache_status(first)
    for _ in range(3):
        r = get(lv, "/a")
        assert r.status == 200 and r.body == b"hello"
        assert "hit" in cache_status(r), r.headers.items
        assert r.headers.get("content-type") == "text/plain"
        assert r.headers.get("content-length") == "5"
        assert r.headers.get("age") is not None
        assert r.headers.get("x-request-id")
    assert o.count("/a") == 1


def test_freshness_sources_and_expiry(h):
    o = Origin(h)
    o.routes["/s"] = (200, {"Cache-Control": "max-age=0, s-maxage=60"}, "s")
    o.routes["/e"] = (200, {"Expires": HTTP_DATE(time.time() + 60, usegmt=True),
                            "Date": HTTP_DATE(time.time(), usegmt=True)}, "e")
    o.routes["/short"] = (200, {"Cache-Control": "max-age=1"}, "x")
    o.routes["/zero"] = (200, {"Cache-Control": "max-age=0"}, "z")
    lv = levee_with(h, o)
    for p in ("/s", "/e", "/short", "/zero"):
        get(lv, p)
        get(lv, p)
    assert o.count("/s") == 1 and o.count("/e") == 1 and o.count("/short") == 1
    assert o.count("/zero") == 2
    time.sleep(2.1)
    get(lv, "/short")
    assert o.count("/short") == 2


def test_not_stored(h):
    o = Origin(h)
    o.routes["/ns"] = (200, {"Cache-Control": "no-store, max-age=60"}, "ns")
    o.routes["/priv"] = (200, {"Cache-Control": "private, max-age=60"}, "p")
    o.routes["/auth"] = (200, {"Cache-Control": "max-age=60"}, "a")
    o.routes["/authpub"] = (200, {"Cache-Control": "public, max-age=60"}, "ap")
    lv = levee_with(h, o)
    for p in ("/ns", "/priv"):
        get(lv, p)
        r = get(lv, p)
        assert "hit" not in cache_status(r)
    get(lv, "/auth", {"Authorization": "Bearer x"})
    get(lv, "/auth", {"Authorization": "Bearer x"})
    get(lv, "/authpub", {"Authorization": "Bearer x"})
    get(lv, "/authpub", {"Authorization": "Bearer y"})
    assert o.count("/ns") == 2 and o.count("/priv") == 2
    assert o.count("/auth") == 2
    assert o.count("/authpub") == 1
    # The request's no-store: forwarded, nothing stored.
    o.routes["/rq"] = (200, {"Cache-Control": "max-age=60"}, "rq")
    get(lv, "/rq", {"Cache-Control": "no-store"})
    get(lv, "/rq")
    assert o.count("/rq") == 2


def test_set_cookie_is_never_replayed(h):
    o = Origin(h)
    o.routes["/c"] = (200, {"Cache-Control": "max-age=60", "Set-Cookie": "sid=1"}, "c")
    o.routes["/cp"] = (200, {"Cache-Control": "public, max-age=60", "Set-Cookie": "sid=2"}, "cp")
    lv = levee_with(h, o)
    first = get(lv, "/c")
    assert first.headers.get("set-cookie") == "sid=1"
    get(lv, "/c")
    assert o.count("/c") == 2  # not stored: it does not say a shared cache may keep it
    first = get(lv, "/cp")
    assert first.headers.get("set-cookie") == "sid=2"  # the client whose request fetched it
    second = get(lv, "/cp")
    assert "hit" in cache_status(second)
    assert second.headers.get("set-cookie") is None  # never replayed to another
    assert o.count("/cp") == 1


def test_vary(h):
    o = Origin(h)
    o.routes["/v"] = lambda req: (200, {"Cache-Control": "max-age=60", "Vary": "Accept-Language"},
                                  "lang=" + (req.headers.get("accept-language") or "-"))
    o.routes["/star"] = (200, {"Cache-Control": "max-age=60", "Vary": "*"}, "star")
    lv = levee_with(h, o)
    assert get(lv, "/v", {"Accept-Language": "en"}).body == b"lang=en"
    assert get(lv, "/v", {"Accept-Language": "fr"}).body == b"lang=fr"
    r = get(lv, "/v", {"Accept-Language": "en"})
    assert r.body == b"lang=en" and "hit" in cache_status(r)
    assert get(lv, "/v", {"Accept-Language": "fr"}).body == b"lang=fr"
    assert o.count("/v") == 2
    get(lv, "/star")
    get(lv, "/star")
    assert o.count("/star") == 2


def test_revalidation_with_304_updates_the_stored_response(h):
    o = Origin(h)

    def rv(req):
        if req.headers.get("if-none-match") == '"e1"':
            return (304, {"Cache-Control": "max-age=60", "ETag": '"e1"', "X-Fresh": "2"}, b"")
        return (200, {"Cache-Control": "max-age=0", "ETag": '"e1"', "X-Fresh": "1"}, "body-1")

    o.routes["/rv"] = rv
    lv = levee_with(h, o)
    assert get(lv, "/rv").body == b"body-1"
    r = get(lv, "/rv")  # stale: revalidated, the 304 served as the full response
    assert r.status == 200 and r.body == b"body-1", r
    assert r.headers.get("x-fresh") == "2"
    assert r.headers.get("content-length") == "6"
    assert o.seen[-1].headers.get("if-none-match") == '"e1"'
    r = get(lv, "/rv")  # the 304 made it fresh for 60 s
    assert "hit" in cache_status(r) and r.body == b"body-1"
    assert o.count("/rv") == 2


def test_client_conditional_gets_304_from_a_fresh_entry(h):
    o = Origin(h)
    o.routes["/cond"] = (200, {"Cache-Control": "max-age=60", "ETag": '"c1"'}, "cond")
    lv = levee_with(h, o)
    first = get(lv, "/cond", {"If-None-Match": '"c1"'})
    # The fill asks the origin for the full response (it is stored), without
    # the client's condition; the origin's answer is relayed.
    assert first.status == 200 and "stored" in cache_status(first)
    assert o.seen[-1].headers.get("if-none-match") is None
    r = get(lv, "/cond", {"If-None-Match": '"c1"'})
    assert r.status == 304 and r.body == b"" and "hit" in cache_status(r)
    r = get(lv, "/cond", {"If-None-Match": '"other"'})
    assert r.status == 200 and r.body == b"cond"
    assert o.count("/cond") == 1


def test_head_is_answered_from_a_stored_get(h):
    o = Origin(h)
    o.routes["/hd"] = (200, {"Cache-Control": "max-age=60"}, "0123456789")
    lv = levee_with(h, o)
    get(lv, "/hd")
    c = lv.client()
    r = c.request("HEAD", "/hd")
    assert r.status == 200 and r.body == b""
    assert r.headers.get("content-length") == "10"
    assert "hit" in cache_status(r)
    r = c.get("/hd")  # the connection carries on: no body was sent after the HEAD
    assert r.body == b"0123456789"
    c.close()
    assert o.count("/hd") == 1


def test_head_miss_is_fetched_as_get_and_stored(h):
    o = Origin(h)
    o.routes["/hm"] = (200, {"Cache-Control": "max-age=60"}, "abcdefghij" * 1000)
    o.routes["/hn"] = (200, {"Cache-Control": "no-store"}, "nope")
    lv = levee_with(h, o)
    c = lv.client()
    r = c.request("HEAD", "/hm")
    assert r.status == 200 and r.body == b""
    assert r.headers.get("content-length") == "10000"
    assert "fwd=uri-miss" in cache_status(r) and "stored" in cache_status(r), r.headers.items
    assert o.seen[-1].method == "GET"
    r = c.get("/hm")  # the same connection: nothing of the GET's body reached it
    assert r.body == b"abcdefghij" * 1000 and "hit" in cache_status(r), r.headers.items
    assert c.request("HEAD", "/hn").status == 200  # not storable: read, dropped
    assert c.get("/hn").body == b"nope"
    c.close()
    assert o.count("/hm") == 1 and o.count("/hn") == 2
    recs = [ln for ln in lv.access_log_lines(4)]
    assert sum(ln.count('"HEAD /h') for ln in recs) == 2, recs


def test_request_directives(h):
    o = Origin(h)
    o.routes["/d"] = (200, {"Cache-Control": "max-age=60", "ETag": '"d"'}, "d")
    lv = levee_with(h, o)
    r = get(lv, "/d", {"Cache-Control": "only-if-cached"})
    assert r.status == 504
    assert o.count("/d") == 0
    get(lv, "/d")
    r = get(lv, "/d", {"Cache-Control": "only-if-cached"})
    assert r.status == 200 and "hit" in cache_status(r)
    get(lv, "/d", {"Cache-Control": "no-cache"})  # forces a revalidation
    assert o.count("/d") == 2
    get(lv, "/d", {"Cache-Control": "max-age=0"})
    assert o.count("/d") == 3
    get(lv, "/d", {"Cache-Control": "min-fresh=3600"})
    assert o.count("/d") == 4
    r = get(lv, "/d", {"Cache-Control": "max-age=3600"})
    assert "hit" in cache_status(r) and o.count("/d") == 4


def test_stale_if_error_when_the_origin_is_down(h):
    o = Origin(h)
    o.routes["/sie"] = (200, {"Cache-Control": "max-age=1, stale-if-error=600"}, "old")
    o.routes["/mr"] = (200, {"Cache-Control": "max-age=1, must-revalidate"}, "mr")
    o.routes["/plain"] = (200, {"Cache-Control": "max-age=1"}, "plain")
    lv = levee_with(h, o, cache="  serve_stale_on_error: 1h")
    for p in ("/sie", "/mr", "/plain"):
        assert get(lv, p).status == 200
    time.sleep(1.5)
    # The origin answers 500: stale-if-error serves the stored copy.
    o.routes["/sie"] = (500, {}, "boom")
    r = get(lv, "/sie")
    assert r.status == 200 and r.body == b"old", r
    assert "fwd=stale" in cache_status(r) and "fwd-status=500" in cache_status(r)
    # Every backend gone.
    o.backend.stop()
    r = get(lv, "/sie")
    assert r.status == 200 and r.body == b"old"
    r = get(lv, "/plain")  # serve_stale_on_error covers a response without the directive
    assert r.status == 200 and r.body == b"plain"
    r = get(lv, "/mr")  # must-revalidate: never stale, 504
    assert r.status == 504


def test_post_invalidates(h):
    o = Origin(h)
    o.routes["/item"] = lambda req: ((201, {"Location": "/other"}, "made") if req.method == "POST"
                                     else (200, {"Cache-Control": "max-age=60"}, "item"))
    o.routes["/other"] = (200, {"Cache-Control": "max-age=60"}, "other")
    lv = levee_with(h, o)
    get(lv, "/item")
    get(lv, "/other")
    assert "hit" in cache_status(get(lv, "/item"))
    c = lv.client()
    r = c.request("POST", "/item", {"Content-Type": "text/plain"}, body=b"x")
    assert r.status == 201
    c.close()
    get(lv, "/item")
    get(lv, "/other")
    assert o.count("/item") == 3  # GET, POST, GET again
    assert o.count("/other") == 2


def test_collapsed_forwarding(h):
    o = Origin(h)
    o.routes["/slow"] = (200, {"Cache-Control": "max-age=60"}, "x" * 5000)
    lv = levee_with(h, o)
    o.gate = threading.Event()
    n = 100
    results = []
    clients = [lv.client() for _ in range(n)]

    def one(c):
        results.append(c.get("/slow"))

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    wait_for(lambda: o.count("/slow") >= 1, what="the first request at the origin")
    time.sleep(0.5)  # the others arrive and wait
    o.gate.set()
    for t in threads:
        t.join(30)
    assert len(results) == n
    assert all(r.status == 200 and r.body == b"x" * 5000 for r in results)
    assert o.count("/slow") == 1
    assert sum("collapsed" in cache_status(r) for r in results) >= 1


def test_max_object_size_streams_through_uncached(h):
    o = Origin(h)
    big = bytes(range(256)) * 400  # 100 KiB > max_object_size 64 KiB
    o.routes["/big"] = (200, {"Cache-Control": "max-age=60"}, big)
    o.routes["/bigchunked"] = (200, {"Cache-Control": "max-age=60",
                                     "Transfer-Encoding": "chunked"}, big)
    lv = levee_with(h, o)
    for p in ("/big", "/bigchunked"):
        assert get(lv, p).body == big
        assert get(lv, p).body == big
    assert o.count("/big") == 2 and o.count("/bigchunked") == 2


def test_chunked_response_is_stored_and_served_with_content_length(h):
    o = Origin(h)
    body = b"chunky body " * 50
    o.routes["/ch"] = (200, {"Cache-Control": "max-age=60", "Transfer-Encoding": "chunked"}, body)
    lv = levee_with(h, o)
    first = get(lv, "/ch")
    assert first.body == body
    r = get(lv, "/ch")
    assert r.body == body and "hit" in cache_status(r)
    assert r.headers.get("content-length") == str(len(body))
    assert r.headers.get("transfer-encoding") is None
    assert o.count("/ch") == 1


def test_metrics(h):
    o = Origin(h)
    o.routes["/m"] = (200, {"Cache-Control": "max-age=60"}, "m")
    lv = levee_with(h, o)
    get(lv, "/m")
    get(lv, "/m")
    get(lv, "/m")
    assert metric(lv, "levee_cache_requests_total", result="hit") == 2
    assert metric(lv, "levee_cache_requests_total", result="miss") == 1
    assert metric(lv, "levee_cache_stores_total") == 1
    assert metric(lv, "levee_cache_entries") == 1
    assert metric(lv, "levee_cache_bytes") > 0


def test_purge(h):
    o = Origin(h)
    for p in ("/p/1", "/p/2", "/q"):
        o.routes[p] = (200, {"Cache-Control": "max-age=60"}, p)
    lv = levee_with(h, o)
    for p in ("/p/1", "/p/2", "/q"):
        get(lv, p)
    host = "levee.test"  # the clients' Host
    r = admin_post(lv, f"/cache/purge?url=http://{host}/q")
    assert r.status == 200, r
    assert b'"purged":1' in r.body
    r = admin_post(lv, f"/cache/purge?prefix=http://{host}/p/")
    assert r.status == 200 and b'"purged":2' in r.body, r
    assert admin_post(lv, "/cache/purge?url=nope").status == 400
    for p in ("/p/1", "/p/2", "/q"):
        get(lv, p)
        assert o.count(p) == 2
    doc = json_of(admin_get(lv, "/cache"))
    assert doc["entries"] == 3 and doc["requests"]["miss"] == 6


def test_memory_is_bounded_least_recently_used_first(h):
    o = Origin(h)
    body = "y" * 8000
    for i in range(20):
        o.routes[f"/lru/{i}"] = (200, {"Cache-Control": "max-age=600"}, body)
    lv = h.levee(f"""
        backends:
          - id: origin
            url: {o.backend.url}
        cache:
          enabled: true
          max_size: 64KiB
          max_object_size: 16KiB
    """)
    get(lv, "/lru/0")
    for i in range(1, 20):
        get(lv, f"/lru/{i}")
        assert "hit" in cache_status(get(lv, "/lru/0"))  # kept: used more recently than others
    assert metric(lv, "levee_cache_bytes") <= 64 * 1024
    assert metric(lv, "levee_cache_evictions_total") > 0
    get(lv, "/lru/1")  # among the least recently used: evicted
    assert o.count("/lru/1") == 2
    assert o.count("/lru/0") == 1
    assert get(lv, "/lru/19").body == body.encode()
    assert o.count("/lru/19") == 1


def test_stale_while_revalidate_refreshes_once_in_the_background(h):
    o = Origin(h)
    o.routes["/swr"] = (200, {"Cache-Control": "max-age=1, stale-while-revalidate=60",
                              "ETag": '"s1"'}, "swr")
    lv = levee_with(h, o)
    get(lv, "/swr")
    time.sleep(1.5)
    o.routes["/swr"] = (200, {"Cache-Control": "max-age=60", "ETag": '"s2"'}, "new")
    o.gate = threading.Event()  # the refresh waits at the origin until the end
    try:
        # The request that wins the refresh is answered stale at once, the
        # refresh goes on without it; the next one is answered stale too.
        for _ in range(2):
            r = get(lv, "/swr")
            assert r.status == 200 and r.body == b"swr", r.headers.items
            assert "hit" in cache_status(r) and "ttl=-" in cache_status(r), r.headers.items
            assert int(r.headers.get("age")) >= 1
        wait_for(lambda: o.count("/swr") == 2, what="the background refresh at the origin")
        assert o.seen[-1].headers.get("if-none-match") == '"s1"'
    finally:
        o.gate.set()
    wait_for(lambda: get(lv, "/swr").body == b"new", what="the refreshed entry")
    r = get(lv, "/swr")
    assert "hit" in cache_status(r) and "ttl=-" not in cache_status(r), r.headers.items
    assert o.count("/swr") == 2  # one refresh


def test_stale_while_revalidate_background_304_refreshes_the_entry(h):
    o = Origin(h)
    o.routes["/s3"] = lambda req: (
        (304, {"Cache-Control": "max-age=60", "ETag": '"e1"'}, "")
        if req.headers.get("if-none-match") == '"e1"' else
        (200, {"Cache-Control": "max-age=1, stale-while-revalidate=60", "ETag": '"e1"'}, "body"))
    lv = levee_with(h, o)
    get(lv, "/s3")
    time.sleep(1.5)
    r = get(lv, "/s3")
    assert r.body == b"body" and "ttl=-" in cache_status(r), r.headers.items
    wait_for(lambda: "ttl=-" not in cache_status(get(lv, "/s3")), what="the 304 merged")
    r = get(lv, "/s3")
    assert r.body == b"body" and "hit" in cache_status(r)
    assert o.count("/s3") == 2


def test_targeted_cache_control_wins_and_is_not_forwarded(h):
    o = Origin(h)
    o.routes["/t"] = (200, {"Cache-Control": "no-store", "CDN-Cache-Control": "max-age=60"}, "t")
    lv = levee_with(h, o)
    first = get(lv, "/t")
    assert first.headers.get("cdn-cache-control") is None  # levee obeyed it: not sent on
    assert first.headers.get("cache-control") == "no-store"  # for the caches after levee
    second = get(lv, "/t")
    assert "hit" in cache_status(second) and second.headers.get("cdn-cache-control") is None
    assert o.count("/t") == 1


def test_json_access_log_shows_the_cache_result(h):
    o = Origin(h)
    o.routes["/l"] = (200, {"Cache-Control": "max-age=60"}, "logged")
    lv = levee_with(h, o, access_log_format="json")
    assert "fwd=uri-miss" in cache_status(get(lv, "/l"))
    assert "hit" in cache_status(get(lv, "/l"))
    get(lv, "/l", method="POST")
    recs = [json.loads(x) for x in lv.access_log_lines(3)]
    assert [(r["method"], r["cache"]) for r in recs] == \
        [("GET", "miss"), ("GET", "hit"), ("POST", "bypass")], recs
    assert o.count("/l") == 2


def test_json_access_log_without_a_cache_says_null(h):
    o = Origin(h)
    o.routes["/n"] = (200, {"Cache-Control": "max-age=60"}, "n")
    lv = h.levee(f"""
        backends:
          - id: origin
            url: {o.backend.url}
    """, access_log_format="json")
    get(lv, "/n")
    (rec,) = [json.loads(x) for x in lv.access_log_lines(1)]
    assert rec["cache"] is None, rec


def test_100mib_response_streams_to_a_slow_reader_without_memory_growing(h):
    """A response larger than max_object_size streams through unstored: levee
    holds what the client has not taken (flow control), not the response."""
    import socket
    size = 100 * 1024 * 1024
    chunk = bytes(range(256)) * 4096  # 1 MiB
    sent = []

    def big(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(chunk)):
            conn.send(chunk)
            sent.append(len(chunk))

    origin = h.scripted(serve(big), id="origin")
    lv = h.levee(f"""
        backends:
          - id: origin
            url: {origin.url}
        cache:
          enabled: true
          max_size: 8MiB
          max_object_size: 1MiB
    """)
    base = lv.rss_bytes()
    s = socket.create_connection((lv.host, lv.port), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    head, body_start = head.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    got = len(body_start)
    peak = base
    # A slow reader: it takes 256 KiB at a time and lets the origin run
    # ahead (as far as levee lets it) before taking more.
    while got < size:
        time.sleep(0.002)
        want = min(256 * 1024, size - got)
        while want > 0:
            b = s.recv(min(want, 65536))
            assert b, f"closed after {got} bytes"
            got += len(b)
            want -= len(b)
        if got % (8 << 20) < 256 * 1024:
            peak = max(peak, lv.rss_bytes())
            # The origin is far ahead of the reader: levee is holding back.
            assert sum(sent) - got < 64 << 20, (sum(sent), got)
    s.close()
    assert got == size
    peak = max(peak, lv.rss_bytes())
    assert peak - base < 32 << 20, f"RSS grew by {(peak - base) >> 20} MiB (base {base >> 20} MiB)"


def test_levee_stops_cleanly_while_a_background_refresh_waits(h):
    o = Origin(h)
    o.routes["/w"] = (200, {"Cache-Control": "max-age=1, stale-while-revalidate=60"}, "w")
    lv = levee_with(h, o)
    get(lv, "/w")
    time.sleep(1.5)
    o.gate = threading.Event()
    try:
        assert get(lv, "/w").body == b"w"
        wait_for(lambda: o.count("/w") == 2, what="the background refresh at the origin")
        assert lv.stop() == []  # exit 0, no sanitizer report (leak, assert)
    finally:
        o.gate.set()


def test_each_route_has_its_cache_settings_over_the_global_ones(h):
    """A route's `cache:` is the global one with its keys on top: with the
    global cache on, a route with `enabled: false` forwards every request;
    with the global cache off, a route with `enabled: true` and a
    `default_ttl` stores a response that has no freshness of its own.
    Counted in the requests the origin sees."""
    o = Origin(h)
    o.routes["/on/a"] = (200, {"Cache-Control": "max-age=60"}, "on")
    o.routes["/off/a"] = (200, {"Cache-Control": "max-age=60"}, "off")
    lv = h.levee(f"""
backends:
  - id: origin
    url: {o.backend.url}
cache: {{ enabled: true, max_size: 8MiB, max_object_size: 64KiB }}
routes:
  - match: {{ path_prefix: /off }}
    pool: default
    cache: {{ enabled: false }}
  - match: {{ path_prefix: /on }}
    pool: default
""")
    for _ in range(3):
        assert get(lv, "/on/a").body == b"on"
        assert get(lv, "/off/a").body == b"off"
    assert o.count("/on/a") == 1, "the route with the global cache: one origin request"
    assert o.count("/off/a") == 3, "the route with cache.enabled false: every request forwarded"

    o2 = Origin(h, id="origin2")
    o2.routes["/ttl/a"] = (200, {"Date": HTTP_DATE(usegmt=True)}, "ttl")
    o2.routes["/plain/a"] = (200, {"Cache-Control": "max-age=60"}, "plain")
    lv2 = h.levee(f"""
backends:
  - id: origin2
    url: {o2.backend.url}
routes:
  - match: {{ path_prefix: /ttl }}
    pool: default
    cache: {{ enabled: true, default_ttl: 1h }}
  - match: {{ path_prefix: /plain }}
    pool: default
""")
    for _ in range(3):
        assert get(lv2, "/ttl/a").body == b"ttl"
        assert get(lv2, "/plain/a").body == b"plain"
    assert o2.count("/ttl/a") == 1, "the route's cache (default_ttl) stored it"
    assert o2.count("/plain/a") == 3, "the global cache is off for the other route"
