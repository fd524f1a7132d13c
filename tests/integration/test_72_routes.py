"""72 — routes and pools (issue 15): one listener in front of several pools.

Matching (host, wildcard, path prefix on segment boundaries, exact path, regex,
header, method, query), first match wins, the path rewrite, redirects, direct
answers, 404 when nothing matches, each pool's own retry policy, a pool all
down while another serves, a reload that moves a route (and a bad one that
keeps the old routes), a WebSocket through a route, a route's own rate limit,
/backends/health and /metrics per pool, the route in the access log.

Which pool answered is told by the demo backends' X-Backend-Id; what a backend
received is recorded by scripted backends. Everything is counted, nothing timed.
"""

import json
from collections import Counter

from adminutil import backends_health, metric, reload_post, reload_via_post, scrape, write_config
from harness import DEADLINE, error_body, wait_for
from scripted import echo_handler, request_summary, serve
from wsutil import WsBackend, run, ws_connect


def pool(name, *backends, extra=""):
    out = f"  {name}:\n    backends:\n"
    for bid, url in backends:
        out += f"      - {{ id: {bid}, url: \"{url}\" }}\n"
    return out + "".join(f"    {line}\n" for line in extra.splitlines() if line)


def get(lv, target, host="levee.test", headers=None, method="GET"):
    hdrs = [("Host", host)] + list((headers or {}).items()) + [("Connection", "close")]
    c = lv.client()
    try:
        return c.request(method, target, hdrs, body=b"x" if method == "POST" else None)
    finally:
        c.close()


def served_by(resp):
    assert resp.status == 200, resp
    return resp.headers.get("x-backend-id")


# --------------------------------------------------------------------------
# matching


def test_each_condition_sends_to_its_pool_and_first_match_wins(h):
    ids = ["host", "wild", "prefix", "exact", "regex", "hdr", "meth", "query"]
    demos = {i: h.demo(i) for i in ids}
    pools = "".join(pool(i, (i, demos[i].url)) for i in ids)
    lv = h.levee(f"""
pools:
{pools}
routes:
  - match: {{ host: api.example.com }}
    pool: host
  - match: {{ host: '*.example.com' }}
    pool: wild
  - match: {{ path_exact: /svc/exact }}
    pool: exact
  - match: {{ path_prefix: /svc }}
    pool: prefix
  - match: {{ path_regex: '^/re/[0-9]+$' }}
    pool: regex
  - match: {{ path_prefix: /h, headers: {{ X-Tenant: blue }} }}
    pool: hdr
  - match: {{ path_prefix: /m, methods: [POST] }}
    pool: meth
  - match: {{ path_prefix: /q, query: {{ version: '2' }} }}
    pool: query
""")
    cases = [
        (("/x", "api.example.com"), "host"),
        (("/x", "API.Example.com:8080"), "host"),        # any case, port ignored
        (("/svc/exact", "api.example.com"), "host"),     # the host route comes first
        (("/x", "a.example.com"), "wild"),
        (("/x", "a.b.example.com"), "wild"),
        (("/svc", "levee.test"), "prefix"),
        (("/svc/", "levee.test"), "prefix"),
        (("/svc/a/b", "levee.test"), "prefix"),
        (("/svc/exact", "levee.test"), "exact"),
        (("/svc/exact?x=1", "levee.test"), "exact"),
        (("/svc/exact/", "levee.test"), "prefix"),       # exact is exact
        (("/a/../svc//x", "levee.test"), "prefix"),      # matched on the normalized path
        (("/%73vc/x", "levee.test"), "prefix"),          # %73 is 's' (unreserved)
        (("/re/42", "levee.test"), "regex"),
        (("/q/x?a=1&version=2", "levee.test"), "query"),
    ]
    for (target, host), want in cases:
        assert served_by(get(lv, target, host)) == want, (target, host)
    assert served_by(get(lv, "/h/x", headers={"x-tenant": "blue"})) == "hdr"
    assert served_by(get(lv, "/m/x", method="POST")) == "meth"

    # No route: 404 with levee's JSON body, and no backend asked.
    before = {i: d.stats()["requests"] for i, d in demos.items()}
    misses = [("/svcx", "levee.test"), ("/x", "example.com"), ("/re/4a", "levee.test"),
              ("/h/x", "levee.test"), ("/q/x?version=3", "levee.test")]
    for target, host in misses:
        resp = get(lv, target, host)
        assert resp.status == 404, (target, host, resp)
        assert error_body(resp)["error"] == "no_route"
    resp = get(lv, "/m/x")                                  # GET, the route wants POST
    assert resp.status == 404
    after = {i: d.stats()["requests"] for i, d in demos.items()}
    assert after == before, "a request no route matches reached a backend"


def test_invalid_escape_is_refused_before_any_route(h):
    d = h.demo("d")
    lv = h.levee(f"pools:\n{pool('p', ('d', d.url))}routes:\n  - match: {{ path_prefix: / }}\n"
                 "    pool: p\n")
    assert get(lv, "/a%zz").status == 400
    assert served_by(get(lv, "/ok")) == "d"
    # Without routes there is no routing step: the target goes as it came.
    b = h.scripted(echo_handler(), id="echo")
    plain = h.levee(f"backends:\n  - {{ id: echo, url: \"{b.url}\" }}\n")
    resp = get(plain, "/a%zz")
    assert resp.status == 200 and resp.json()["target"] == "/a%zz", resp


def test_an_absolute_form_target_is_routed_by_its_authority(h):
    a, o = h.demo("abs"), h.demo("other")
    lv = h.levee(f"""
pools:
{pool("a", ("abs", a.url))}
{pool("o", ("other", o.url))}
routes:
  - match: {{ host: api.example.com, path_prefix: /v1 }}
    pool: a
  - match: {{ path_prefix: / }}
    pool: o
""")
    # RFC 9112 3.2.2: the target's authority is the host, whatever Host says.
    assert served_by(get(lv, "http://API.example.com:8080/v1/x?q", host="api.example.com")) == "abs"
    assert served_by(get(lv, "http://api.example.com", host="api.example.com")) == "other"
    assert served_by(get(lv, "http://www.example.com/v1/x", host="api.example.com")) == "other"


# --------------------------------------------------------------------------
# what a route does


def test_strip_prefix_add_prefix_regex_rewrite_and_host_rewrite(h):
    b = h.scripted(echo_handler(), id="echo")
    lv = h.levee(f"""
pools:
{pool("api", ("echo", b.url))}
routes:
  - match: {{ path_prefix: /v1/ }}
    pool: api
    strip_prefix: /v1
  - match: {{ path_prefix: /v2 }}
    pool: api
    strip_prefix: /v2
    add_prefix: /internal
    host_rewrite: backend.internal
  - match: {{ path_regex: '^/old/(.*)$' }}
    pool: api
    rewrite: /new/$1
  - match: {{ path_prefix: /keep }}
    pool: api
""")
    cases = [
        ("/v1/users?id=1", "/users?id=1"),
        ("/v1/", "/"),
        ("/v2/x", "/internal/x"),
        ("/v2", "/internal/"),                          # the stripped prefix leaves "/"
        ("/old/a/../b?q", "/new/b?q"),
        ("/keep//a/%41?x=%20", "/keep//a/%41?x=%20"),   # no rewrite: sent as it came
    ]
    for target, sent in cases:
        resp = get(lv, target)
        assert resp.status == 200, (target, resp)
        assert resp.json()["target"] == sent, (target, resp.json()["target"])
    seen = b.wait_requests(len(cases))
    hosts = [s.headers.get("host") for s in seen]
    assert hosts[2] == "backend.internal" and hosts[3] == "backend.internal", hosts
    assert hosts[0] == "levee.test", hosts
    assert seen[2].headers.get("x-forwarded-host") == "levee.test"


def test_redirect_respond_and_no_route_answers(h):
    d = h.demo("d")
    lv = h.levee(f"""
pools:
{pool("p", ("d", d.url))}
routes:
  - match: {{ path_regex: '^/old/(.*)$' }}
    redirect: {{ status: 301, location: '/new/$1' }}
  - match: {{ path_prefix: /go }}
    redirect: {{ status: 308, location: 'https://${{host}}/elsewhere' }}
  - match: {{ path_exact: /robots.txt }}
    respond: {{ status: 200, body: "User-agent: *\\nDisallow:\\n", content_type: text/plain }}
  - match: {{ path_prefix: /app }}
    pool: p
no_route: {{ status: 421, body: "not here\\n", content_type: text/plain }}
""")
    r = get(lv, "/old/a/b?q=1")
    assert (r.status, r.headers.get("location")) == (301, "/new/a/b?q=1"), r
    r = get(lv, "/go/x", host="Site.Example:8080")
    assert (r.status, r.headers.get("location")) == (308, "https://site.example/elsewhere"), r
    r = get(lv, "/robots.txt")
    assert r.status == 200 and r.body == b"User-agent: *\nDisallow:\n", r
    assert r.headers.get("content-type") == "text/plain"
    assert r.headers.get("x-request-id")
    r = get(lv, "/robots.txt", method="HEAD")
    assert r.status == 200 and r.body == b"" and r.headers.get("content-length") == "24"
    r = get(lv, "/nothing")
    assert r.status == 421 and r.body == b"not here\n", r
    assert served_by(get(lv, "/app")) == "d"
    assert d.stats()["requests"] == 1, "only /app reached the backend"
    # A direct answer keeps the connection: two requests on one.
    c = lv.client()
    try:
        assert c.get("/robots.txt", [("Host", "a")]).status == 200
        assert c.get("/app/x", [("Host", "a")]).status == 200
    finally:
        c.close()


# --------------------------------------------------------------------------
# pools and their policies


def test_each_pool_has_its_own_retry_policy_and_a_dead_pool_does_not_hurt_another(h):
    good_a, good_b = h.demo("good_a"), h.demo("good_b")
    dead = f"http://127.0.0.1:{h.closed_port()}"
    dead2 = f"http://127.0.0.1:{h.closed_port()}"
    off = "circuit_breaker: { enabled: false }"
    retrying = pool("retrying", ("dead_a", dead), ("good_a", good_a.url),
                    extra="retry: { max_attempts: 3, base_delay: 1ms, max_delay: 2ms }\n" + off)
    once = pool("once", ("dead_b", dead2), ("good_b", good_b.url),
                extra="retry: { max_attempts: 1 }\n" + off)
    down = pool("down", ("dead_c", f"http://127.0.0.1:{h.closed_port()}"), extra=off)
    lv = h.levee(f"""
load_balancing: round_robin
pools:
{retrying}{once}{down}
routes:
  - match: {{ path_prefix: /a }}
    pool: retrying
  - match: {{ path_prefix: /b }}
    pool: once
  - match: {{ path_prefix: /c }}
    pool: down
""")
    a = Counter(get(lv, f"/a/{i}").status for i in range(8))
    b = Counter(get(lv, f"/b/{i}").status for i in range(8))
    c = Counter(get(lv, f"/c/{i}").status for i in range(3))
    assert a == Counter({200: 8}), f"the retrying pool retried onto good_a: {a}"
    assert b[502] >= 1 and b[200] >= 1 and set(b) <= {200, 502}, f"max_attempts 1: {b}"
    assert set(c) <= {502, 503} and sum(c.values()) == 3, c
    assert a == Counter({200: 8}) and good_a.stats()["requests"] == 8


def test_each_pool_keeps_idle_connections_by_its_own_pool_settings(h):
    """A pool's `pool:` beats the global one, key by key: with the global
    max_idle 0, the pool that does not set it opens a connection per request,
    the one with max_idle 4 reuses one; a pool's own max_idle 0 under an
    unlimited global does the opposite. Counted in connections opened."""
    a, b = h.demo("nokeep"), h.demo("keep")
    c, d = h.demo("own0"), h.demo("dflt")
    lv = h.levee(f"""
pool: {{ max_idle: 0 }}
pools:
{pool("p_nokeep", ("nokeep", a.url))}{pool("p_keep", ("keep", b.url), extra="pool: { max_idle: 4, idle_timeout: 1h }")}
routes:
  - match: {{ path_prefix: /nokeep }}
    pool: p_nokeep
  - match: {{ path_prefix: /keep }}
    pool: p_keep
""")
    n = 5

    def run_seq(prefix, bid):
        for i in range(n):
            assert served_by(get(lv, f"/{prefix}/{i}")) == bid
            wait_for(lambda: backends_health(lv)[bid]["active_requests"] == 0, DEADLINE, 0.02,
                     f"{bid}'s connection released")

    run_seq("nokeep", "nokeep")
    run_seq("keep", "keep")
    opened = lambda bid: metric(lv, "levee_backend_connections_opened_total", backend=bid,
                                pool="p_" + bid)
    assert opened("nokeep") == n, "the global max_idle 0: a connection per request"
    assert opened("keep") == 1, "the pool's max_idle 4 beats the global 0: one kept"

    lv2 = h.levee(f"""
pools:
{pool("p_own0", ("own0", c.url), extra="pool: { max_idle: 0 }")}{pool("p_dflt", ("dflt", d.url))}
routes:
  - match: {{ path_prefix: /own0 }}
    pool: p_own0
  - match: {{ path_prefix: /dflt }}
    pool: p_dflt
""")
    lv = lv2
    run_seq("own0", "own0")
    run_seq("dflt", "dflt")
    assert opened("own0") == n, "the pool's max_idle 0 beats the global unlimited"
    assert opened("dflt") == 1, "a pool without pool: keeps by the global (unlimited)"


def test_backends_health_and_metrics_show_pools_and_the_access_log_the_route(h):
    x, y = h.demo("x1"), h.demo("y1")
    lv = h.levee(f"""
pools:
{pool("xs", ("x1", x.url), extra="circuit_breaker: { enabled: false }")}
{pool("ys", ("y1", y.url))}
routes:
  - name: to-x
    match: {{ path_prefix: /x }}
    pool: xs
  - match: {{ path_prefix: /y }}
    pool: ys
""", access_log_format="json")
    assert served_by(get(lv, "/x/1")) == "x1"
    assert served_by(get(lv, "/y/1")) == "y1"
    doc = backends_health(lv)
    assert doc["x1"]["pool"] == "xs" and doc["y1"]["pool"] == "ys", doc
    assert doc["x1"]["breaker"]["state"] == "disabled"
    assert doc["y1"]["breaker"]["state"] == "closed"
    pools = {p["name"]: p for p in doc[None]["pools"]}
    assert pools["xs"]["backends"] == ["x1"] and pools["ys"]["backends"] == ["y1"], pools
    assert metric(lv, "backend_health", backend="x1", pool="xs") == 1
    assert metric(lv, "proxy_requests_total", status="200", backend="y1", pool="ys",
                  route="routes[1]") == 1
    lines = [json.loads(x) for x in lv.access_log_lines(2)]
    assert [r["route"] for r in lines] == ["to-x", "routes[1]"], lines


def test_backends_health_lists_the_routes_for_the_dashboard(h):
    d = h.demo("r1")
    lv = h.levee(f"""
pools:
{pool("api", ("r1", d.url))}
routes:
  - name: v1
    match: {{ host: [api.example.com, '*.api.test'], path_prefix: /v1, methods: [GET, POST] }}
    pool: api
  - match: {{ path_regex: '^/old/(.*)$', headers: {{ X-Tenant: blue }}, query: {{ v: '2' }} }}
    redirect: {{ status: 301, location: '/new/$1' }}
  - name: robots
    match: {{ path_exact: /robots.txt }}
    respond: {{ status: 200, body: "x" }}
""")
    routes = backends_health(lv)[None]["routes"]
    assert routes == [
        {"name": "v1", "implicit": False, "action": "pool", "pool": "api", "status": None,
         "match": "host api.example.com,*.api.test path_prefix /v1 methods GET,POST"},
        {"name": "routes[1]", "implicit": False, "action": "redirect", "pool": None,
         "status": 301, "match": "path_regex ^/old/(.*)$ header X-Tenant query v"},
        {"name": "robots", "implicit": False, "action": "respond", "pool": None, "status": 200,
         "match": "path_exact /robots.txt"},
        {"name": "no_route", "implicit": True, "action": "respond", "pool": None, "status": 404,
         "match": "no other route"},
    ], routes
    # Without routes: the one implicit route to the default pool.
    plain = h.levee(f"backends:\n  - {{ id: r1, url: \"{d.url}\" }}\n")
    assert backends_health(plain)[None]["routes"] == [
        {"name": "default", "implicit": True, "action": "pool", "pool": "default",
         "status": None, "match": "no other route"}]


def test_metrics_carry_route_and_pool_labels(h):
    good = h.demo("good")
    dead = f"http://127.0.0.1:{h.closed_port()}"
    bp = pool("bp", ("good2", good.url), ("dead", dead),
              extra="retry: { max_attempts: 3, base_delay: 1ms, max_delay: 2ms }\n"
                    "circuit_breaker: { enabled: false }")
    lv = h.levee(f"""
load_balancing: round_robin
pools:
{pool("gp", ("good", good.url))}
{bp}
routes:
  - name: api
    match: {{ path_prefix: /api }}
    pool: gp
    rate_limit: {{ per_client: {{ requests_per_second: 0.01, burst: 2 }} }}
  - match: {{ path_prefix: /web }}
    pool: bp
  - name: robots
    match: {{ path_exact: /robots.txt }}
    respond: {{ status: 200, body: "x" }}
""")
    api = Counter(get(lv, f"/api/{i}").status for i in range(4))
    assert api == Counter({200: 2, 429: 2}), api
    web = Counter(get(lv, f"/web/{i}").status for i in range(6))
    assert web == Counter({200: 6}), web
    assert get(lv, "/robots.txt").status == 200
    assert get(lv, "/nowhere").status == 404
    m = scrape(lv)
    assert m.get("proxy_requests_total", status="200", backend="good", pool="gp",
                 route="api") == 2
    assert m.get("proxy_requests_total", status="429", backend="none", pool="gp",
                 route="api") == 2
    assert m.sum("proxy_requests_total", route="routes[1]", pool="bp") == 6
    assert m.get("proxy_requests_total", status="200", backend="none", pool="none",
                 route="robots") == 1
    assert m.get("proxy_requests_total", status="404", backend="none", pool="none",
                 route="no_route") == 1
    # Nothing without the route label when the file has routes.
    assert all("route" in ls for ls, _ in m.series("proxy_requests_total"))
    assert m.get("proxy_request_duration_seconds_count", route="api", pool="gp") == 4
    assert m.get("proxy_request_duration_seconds_count", route="routes[1]", pool="bp") == 6
    assert m.get("proxy_request_duration_seconds_count", route="robots", pool="none") == 1
    assert m.get("rate_limit_rejected_total", scope="client", route="api", pool="gp") == 2
    assert m.get("rate_limit_rejected_total", scope="client", route="routes[1]", pool="bp") == 0
    # bp's dead backend refuses: each request that met it first was retried.
    retries = m.get("levee_retries_total", route="routes[1]", pool="bp")
    dead_tries = m.get("levee_backend_attempts_total", backend="dead", pool="bp")
    assert retries == dead_tries and retries >= 1, (retries, dead_tries)
    assert m.get("levee_retries_total", route="api", pool="gp") == 0


def test_metrics_keep_their_labels_without_routes(h):
    d = h.demo("solo")
    lv = h.levee(f"backends:\n  - {{ id: solo, url: \"{d.url}\" }}\n")
    assert served_by(get(lv, "/x")) == "solo"
    m = scrape(lv)
    assert m.get("proxy_requests_total", status="200", backend="solo") == 1
    assert m.get("proxy_request_duration_seconds_count") == 1
    assert m.get("levee_retries_total") == 0
    assert m.get("rate_limit_rejected_total", scope="client") == 0


def test_health_checks_run_per_pool_with_each_pools_settings(h):
    x, y = h.demo("hx"), h.demo("hy")
    lv = h.levee(f"""
pools:
  xs:
    backends: [{{ id: hx, url: "{x.url}", health_check_enabled: true }}]
    health_check: {{ path: /status/503, interval: 100ms, unhealthy_threshold: 1 }}
  ys:
    backends: [{{ id: hy, url: "{y.url}", health_check_enabled: true }}]
    health_check: {{ path: /health, interval: 100ms }}
routes:
  - match: {{ path_prefix: /x }}
    pool: xs
  - match: {{ path_prefix: /y }}
    pool: ys
""")
    wait_for(lambda: backends_health(lv)["hx"]["health"] == "unhealthy", what="hx unhealthy")
    wait_for(lambda: backends_health(lv)["hy"]["health"] == "healthy", what="hy healthy")
    assert served_by(get(lv, "/y")) == "hy"
    assert backends_health(lv)["hy"]["last_check"]["result"].startswith("ok")


# --------------------------------------------------------------------------
# reload


def test_reload_moves_a_route_and_a_bad_file_keeps_the_old_routes(h):
    a, b = h.demo("ra"), h.demo("rb")

    def conf(target_pool, route_pool=None):
        return f"""
pools:
{pool("pa", ("ra", a.url))}
{pool("pb", ("rb", b.url))}
routes:
  - match: {{ path_prefix: /x }}
    pool: {route_pool or target_pool}
  - match: {{ path_prefix: /other }}
    pool: {"pb" if target_pool == "pa" else "pa"}
"""
    lv = h.levee(conf("pa"))
    assert served_by(get(lv, "/x/1")) == "ra"
    reload_via_post(lv, conf("pb"))
    assert [served_by(get(lv, f"/x/{i}")) for i in range(4)] == ["rb"] * 4
    write_config(lv, conf("pb", route_pool="nosuch"))
    status, body = reload_post(lv)
    assert status == 400, (status, body)
    text = json.dumps(body)
    assert "nosuch" in text and ".yaml:" in text, body        # FILE:LINE:COL
    assert [served_by(get(lv, f"/x/{i}")) for i in range(3)] == ["rb"] * 3
    # No routes any more: everything to the top-level backends, as before routes.
    reload_via_post(lv, f"backends:\n  - {{ id: ra, url: \"{a.url}\" }}\n")
    assert served_by(get(lv, "/anything")) == "ra"


# --------------------------------------------------------------------------
# WebSocket and rate limits


def test_websocket_through_a_route(h):
    wsb = WsBackend(h.tmp_path, "chat", ()).start()
    d = h.demo("web")
    try:
        lv = h.levee(f"""
pools:
{pool("chat", ("chat", wsb.url))}
{pool("web", ("web", d.url))}
routes:
  - match: {{ path_prefix: /ws, headers: {{ Upgrade: {{ equal: websocket, ignore_case: true }} }} }}
    pool: chat
    timeouts: {{ tunnel: 1h }}
  - match: {{ path_prefix: / }}
    pool: web
""")

        async def scenario():
            async with ws_connect(lv.port, "/ws/room") as c:
                await c.send("hello through a route")
                return await c.recv()

        assert run(scenario()) == "hello through a route"
        [conn] = wsb.wait_events("connect")
        assert conn["path"] == "/ws/room"
        assert served_by(get(lv, "/ws/room")) == "web"          # no Upgrade: the web pool
    finally:
        wsb.stop()


def test_a_route_has_its_own_rate_limit(h):
    d = h.demo("rl")
    lv = h.levee(f"""
pools:
{pool("p", ("rl", d.url))}
routes:
  - match: {{ path_prefix: /limited }}
    pool: p
    rate_limit: {{ per_client: {{ requests_per_second: 0.01, burst: 2 }} }}
  - match: {{ path_prefix: / }}
    pool: p
""")
    limited = Counter(get(lv, f"/limited/{i}").status for i in range(5))
    free = Counter(get(lv, f"/free/{i}").status for i in range(10))
    assert limited == Counter({200: 2, 429: 3}), limited
    assert free == Counter({200: 10}), free
    assert scrape(lv)  # the admin port still answers


def test_header_edits_and_forwarded(h):
    extra = [("X-Backend-Id", "echo"), ("Cache-Control", "max-age=60")]
    b = h.scripted(serve(lambda conn, req: conn.respond_json(request_summary(req), headers=extra)),
                   id="echo")
    lv = h.levee(f"""
pools:
{pool("api", ("echo", b.url))}
routes:
  - name: edit
    match: {{ path_prefix: /e }}
    pool: api
    forwarded: true
    request_headers:
      remove: [X-Secret]
      set: {{ X-Tenant: fixed }}
      add: {{ X-Route: '${{route}}/${{pool}}', X-Client: '${{client_addr}}' }}
    response_headers:
      remove: [X-Backend-Id]
      set: {{ Cache-Control: no-store }}
      add: {{ X-Served-By: '${{route}}' }}
  - match: {{ path_prefix: / }}
    pool: api
""")
    r = get(lv, "/e/1", host="Api.Example:81",
            headers={"X-Secret": "s", "X-Tenant": "client", "X-Keep": "k"})
    assert r.status == 200, r
    [seen] = b.wait_requests(1)
    hdrs = seen.headers
    assert hdrs.get("x-secret") is None
    assert hdrs.get_all("x-tenant") == ["fixed"], hdrs.items
    assert hdrs.get("x-route") == "edit/api" and hdrs.get("x-client") == "127.0.0.1"
    assert hdrs.get("x-keep") == "k"
    assert hdrs.get("forwarded") == 'for=127.0.0.1;proto=http;host="api.example"', hdrs.items
    assert hdrs.get("x-forwarded-for") == "127.0.0.1"
    assert r.headers.get("x-served-by") == "edit"
    assert r.headers.get_all("cache-control") == ["no-store"]
    assert r.headers.get("x-backend-id") is None
    # Another route: nothing changed.
    r = get(lv, "/plain", headers={"X-Secret": "s"})
    [_, seen] = b.wait_requests(2)
    assert seen.headers.get("x-secret") == "s" and seen.headers.get("forwarded") is None
    assert r.headers.get("x-served-by") is None
    assert r.headers.get("x-backend-id") == "echo"


def test_unmatched_requests_go_to_the_top_level_backends_the_default_pool(h):
    d, s = h.demo("dflt"), h.demo("special")
    lv = h.levee(f"""
backends:
  - {{ id: dflt, url: "{d.url}" }}
pools:
{pool("sp", ("special", s.url))}
routes:
  - match: {{ path_prefix: /special }}
    pool: sp
""")
    assert served_by(get(lv, "/special/x")) == "special"
    assert served_by(get(lv, "/anything/else")) == "dflt"
    assert served_by(get(lv, "/specialx")) == "dflt"
    doc = backends_health(lv)
    assert (doc["dflt"]["pool"], doc["special"]["pool"]) == ("default", "sp")
