"""85 — the admin listener (docs/admin-api.md) and the metrics: /health on the
admin and the proxy port, /backends/health field by field under real traffic,
/metrics parsed strictly as Prometheus text with numbers that match the traffic
sent, /api/history, the dashboard page, 404/405, the admin.token rule off
loopback, and `admin: {listen: off}`.

Backends are demo backends (X-Backend-Id tells who answered) and closed ports
(connections refused)."""

import json
import re
import time
from collections import Counter

import pytest

from adminutil import (
    Background,
    admin_get,
    admin_json,
    admin_request,
    backends_health,
    json_of,
    listening_ports,
    scrape,
    send,
)
from harness import REPO_ROOT, error_body, run_levee, wait_for

HEALTH_KEYS = {"status", "uptime_seconds", "backends", "features"}
FEATURE_KEYS = {"circuit_breaker", "rate_limiting", "health_checks"}


def check_health_doc(doc):
    """The exact shape of GET /health; returns the document."""
    assert set(doc) == HEALTH_KEYS, f"/health keys: {sorted(doc)}"
    assert doc["status"] in ("healthy", "degraded", "unhealthy"), doc
    assert type(doc["uptime_seconds"]) is int and doc["uptime_seconds"] >= 0, doc
    assert set(doc["backends"]) == {"healthy", "total"}, doc
    assert all(type(doc["backends"][k]) is int for k in ("healthy", "total")), doc
    assert set(doc["features"]) == FEATURE_KEYS, doc
    assert all(type(v) is bool for v in doc["features"].values()), doc
    return doc


def health_both(lv):
    """(status code, document) of /health on the admin port and on the proxy port."""
    out = []
    for resp in (admin_get(lv, "/health"), lv.get("/health")):
        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        assert ctype == "application/json", resp
        out.append((resp.status, check_health_doc(json.loads(resp.body))))
    return out


def two_demos(h, extra="", b2_extra=""):
    b1, b2 = h.demo("b1"), h.demo("b2")
    return b1, b2, f"""
backends:
  - id: b1
    url: {b1.url}
  - id: b2
    url: {b2.url}
{b2_extra}{extra}"""


# --------------------------------------------------------------------------
# /health


def test_health_shape_features_off_and_uptime_grows(h):
    _b1, _b2, cfg = two_demos(h)
    lv = h.levee(cfg)

    (sa, admin), (sp, proxy) = health_both(lv)

    for status, doc in ((sa, admin), (sp, proxy)):
        assert status == 200
        assert doc["status"] == "healthy"
        assert doc["backends"] == {"healthy": 2, "total": 2}
        assert doc["features"] == {"circuit_breaker": True, "rate_limiting": False,
                                   "health_checks": False}
    assert abs(admin["uptime_seconds"] - proxy["uptime_seconds"]) <= 2
    assert admin["uptime_seconds"] < 60
    start = admin["uptime_seconds"]
    wait_for(lambda: admin_json(lv, "/health")["uptime_seconds"] >= start + 1, 10,
             0.1, "uptime_seconds to grow")
    assert lv.get("/health").json()["uptime_seconds"] >= start + 1


def test_health_features_on(h):
    _b1, _b2, cfg = two_demos(h, extra="""
circuit_breaker:
  enabled: false
rate_limit:
  requests_per_second: 1000
health_check:
  interval: 1h
""", b2_extra="    health_check_enabled: true\n")
    lv = h.levee(cfg)

    for status, doc in health_both(lv):
        assert status == 200 and doc["status"] == "healthy", doc
        assert doc["features"] == {"circuit_breaker": False, "rate_limiting": True,
                                   "health_checks": True}


def test_health_degraded_then_unhealthy_as_backends_go_down(h):
    _b1, _b2, cfg = two_demos(h, extra="""
health_check:
  interval: 100ms
  timeout: 500ms
  unhealthy_threshold: 1
  healthy_threshold: 1
""", b2_extra="    health_check_enabled: true\n")
    cfg = cfg.replace(f"    url: {_b1.url}\n", f"    url: {_b1.url}\n    health_check_enabled: true\n")
    lv = h.levee(cfg)
    for status, doc in health_both(lv):
        assert (status, doc["status"], doc["backends"]) == (200, "healthy",
                                                           {"healthy": 2, "total": 2})

    _b2.stop()
    wait_for(lambda: admin_json(lv, "/health")["status"] == "degraded", 15, 0.05,
             "status degraded")
    for status, doc in health_both(lv):
        assert (status, doc["status"], doc["backends"]) == (200, "degraded",
                                                           {"healthy": 1, "total": 2})
    b2 = backends_health(lv)["b2"]
    assert (b2["health"], b2["usable"], b2["state"]) == ("unhealthy", False, "unhealthy"), b2
    assert b2["consecutive_check_failures"] >= 1 and b2["consecutive_check_successes"] == 0, b2
    assert b2["last_check"]["result"] != "ok (200)", b2

    _b1.stop()
    wait_for(lambda: admin_get(lv, "/health").status == 503, 15, 0.05, "/health 503")
    for status, doc in health_both(lv):
        assert (status, doc["status"], doc["backends"]) == (503, "unhealthy",
                                                           {"healthy": 0, "total": 2})

    _b1.start(port=_b1.port)
    wait_for(lambda: json_of(admin_get(lv, "/health"))["status"] == "degraded", 15, 0.05,
             "b1 back: degraded")
    for status, doc in health_both(lv):
        assert (status, doc["status"], doc["backends"]) == (200, "degraded",
                                                           {"healthy": 1, "total": 2})


def test_health_with_no_backends_is_unhealthy(h):
    lv = h.levee("backends: []\n")

    for status, doc in health_both(lv):
        assert doc["backends"] == {"healthy": 0, "total": 0}, doc
        assert (status, doc["status"]) == (503, "unhealthy"), (
            f"no backend can take a request: /health must say unhealthy with 503, got "
            f"{status} {doc}")


# --------------------------------------------------------------------------
# /backends/health

ENTRY_KEYS = {"id", "url", "weight", "admin_state", "usable", "health", "breaker",
              "consecutive_check_failures", "consecutive_check_successes", "active_requests",
              "requests", "errors", "latency_ms", "last_check"}


def check_entry(e):
    missing = ENTRY_KEYS - set(e)
    assert not missing, f"/backends/health entry lacks {sorted(missing)}: {e}"
    assert type(e["id"]) is str and type(e["url"]) is str and type(e["weight"]) is int, e
    assert e["admin_state"] in ("enabled", "draining", "disabled"), e
    assert type(e["usable"]) is bool, e
    assert e["health"] in ("healthy", "unhealthy", "unchecked"), e
    br = e["breaker"]
    assert {"state", "next_change_ms", "consecutive_failures", "window"} <= set(br), br
    assert br["state"] in ("closed", "open", "half_open"), br
    assert br["next_change_ms"] is None or type(br["next_change_ms"]) is int, br
    assert type(br["consecutive_failures"]) is int, br
    assert set(br["window"]) == {"ok", "fail"}, br
    for k in ("consecutive_check_failures", "consecutive_check_successes", "active_requests",
              "requests", "errors"):
        assert type(e[k]) is int and e[k] >= 0, (k, e)
    assert set(e["latency_ms"]) == {"p50", "p99", "ewma"}, e
    assert all(isinstance(v, (int, float)) for v in e["latency_ms"].values()), e
    lc = e["last_check"]
    assert lc is None or (set(lc) == {"result", "time"} and type(lc["result"]) is str
                          and type(lc["time"]) is int), e
    return e


def test_backends_health_fields_under_traffic(h):
    b1, b2 = h.demo("b1"), h.demo("b2")
    dead = h.closed_port()
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b1.url}
            health_check_enabled: true
          - id: b2
            url: {b2.url}
            weight: 3
          - id: dead
            url: http://127.0.0.1:{dead}
        load_balancing: round_robin
        retry:
          hedge_after: off
        circuit_breaker:
          failure_threshold: 2
          timeout: 1m
          window: 1m
        health_check:
          interval: 200ms
          timeout: 1s
    """)
    n = 30
    assert backends_health(lv)[None]["rate_limit_store"] is None  # no shared store configured

    seen = send(lv, n)                 # dead refuses twice (then its breaker opens): retried
    slow = Background(lv.get, "/delay/1s")
    active = wait_for(lambda: {k: v["active_requests"] for k, v in backends_health(lv).items()
                               if k and v["active_requests"]}, 15, 0.02,
                      "the slow request to be in flight")
    resp = slow.result()
    assert resp.status == 200, resp
    slow_id = resp.headers.get("x-backend-id")
    seen[slow_id] += 1

    assert active == {slow_id: 1}, f"active_requests during one slow request: {active}"
    assert sum(seen.values()) == n + 1 and set(seen) == {"b1", "b2"}, seen
    wait_for(lambda: backends_health(lv)["b1"]["latency_ms"]["p50"] > 0
             and backends_health(lv)["b2"]["latency_ms"]["p50"] > 0
             and backends_health(lv)[slow_id]["latency_ms"]["p99"] >= 500, 10, 0.1,
             "latency percentiles after traffic, the slow request's in p99 (sampled every "
             "second)")
    wait_for(lambda: backends_health(lv)["b1"]["last_check"] is not None, 10, 0.05,
             "a health check of b1")
    doc = backends_health(lv)
    top = doc[None]
    assert abs(top["time"] - time.time() * 1000) < 60_000, top["time"]
    assert [b["id"] for b in top["backends"]] == ["b1", "b2", "dead"]
    for bid in ("b1", "b2", "dead"):
        check_entry(doc[bid])

    e1, e2, ed = doc["b1"], doc["b2"], doc["dead"]
    assert (e1["url"], e2["url"], ed["url"]) == (b1.url, b2.url, f"http://127.0.0.1:{dead}")
    assert (e1["weight"], e2["weight"], ed["weight"]) == (1, 3, 1)
    for e, bid in ((e1, "b1"), (e2, "b2")):
        assert e["requests"] == seen[bid], (
            f"{bid}: requests {e['requests']}, but it answered {seen[bid]} (health checks "
            f"are not requests)")
        assert e["errors"] == 0 and e["active_requests"] == 0, e
        assert (e["admin_state"], e["usable"]) == ("enabled", True), e
        assert e["breaker"]["state"] == "closed" and e["breaker"]["next_change_ms"] is None, e
        assert e["breaker"]["consecutive_failures"] == 0, e
        assert e["breaker"]["window"] == {"ok": seen[bid], "fail": 0}, e
        assert 0 < e["latency_ms"]["p50"] <= e["latency_ms"]["p99"], e
    assert doc[slow_id]["latency_ms"]["p99"] >= 500, (
        f"{slow_id} answered a 1 s request: its p99 should show it: {doc[slow_id]}")
    # health checks: b1 is checked, b2 and dead are not
    assert e1["health"] == "healthy" and e1["consecutive_check_failures"] == 0, e1
    assert e1["consecutive_check_successes"] >= 1, e1
    assert e1["last_check"]["result"] == "ok (200)", e1
    assert abs(e1["last_check"]["time"] - time.time() * 1000) < 60_000, e1
    assert (e2["health"], e2["last_check"]) == ("unchecked", None), e2
    assert e2["consecutive_check_successes"] == 0, e2
    # the refusing backend: 2 attempts, 2 errors, breaker open with a countdown
    assert (ed["requests"], ed["errors"], ed["active_requests"]) == (2, 2, 0), ed
    assert (ed["usable"], ed["health"], ed["last_check"]) == (False, "unchecked", None), ed
    br = ed["breaker"]
    assert br["state"] == "open", br
    assert 0 < br["next_change_ms"] <= 72_000, br
    assert br["window"] == {"ok": 0, "fail": 2}, br
    first = br["next_change_ms"]
    wait_for(lambda: backends_health(lv)["dead"]["breaker"]["next_change_ms"] < first, 5, 0.05,
             "next_change_ms to count down")


# --------------------------------------------------------------------------
# /metrics

README_METRICS = {
    "proxy_requests_total": "counter",
    "proxy_request_duration_seconds": "histogram",
    "backend_health": "gauge",
    "circuit_breaker_state": "gauge",
    "rate_limit_rejected_total": "counter",
    "levee_request_attempts": "histogram",
    "levee_retries_total": "counter",
    "levee_retries_skipped_total": "counter",
    "levee_hedges_total": "counter",
    "levee_hedge_wins_total": "counter",
    "levee_attempt_failures_total": "counter",
    "levee_timeouts_total": "counter",
    "levee_generated_responses_total": "counter",
    "levee_backend_attempts_total": "counter",
    "levee_backend_errors_total": "counter",
    "levee_backend_connections_opened_total": "counter",
    "levee_backend_connection_reuses_total": "counter",
    "levee_backend_response_seconds": "histogram",
    "levee_backend_active_requests": "gauge",
    "levee_backend_check_healthy": "gauge",
    "levee_backend_admin_state": "gauge",
    "levee_breaker_transitions_total": "counter",
    "levee_client_connections": "gauge",
    "levee_backend_connections": "gauge",
    "levee_client_connections_accepted_total": "counter",
    "levee_max_connections": "gauge",
    "levee_accept_pauses_total": "counter",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "levee_tunnels_total": "counter",
    "levee_tunnels_open": "gauge",
    "levee_tunnel_bytes_total": "counter",
    "levee_tls_handshakes_total": "counter",
    "levee_rate_limit_store_up": "gauge",
    "levee_rate_limit_store_fallbacks_total": "counter",
    "levee_request_ids_generated_total": "counter",
    "levee_config_reloads_total": "counter",
    "levee_config_generation": "gauge",
    "levee_workers": "gauge",
    "process_start_time_seconds": "gauge",
    "levee_build_info": "gauge",
}


def test_metrics_format_and_numbers_match_the_traffic(h):
    b1 = h.demo("b1")
    dead = h.closed_port()
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b1.url}
          - id: dead
            url: http://127.0.0.1:{dead}
        load_balancing: round_robin
        retry:
          hedge_after: off
        circuit_breaker:
          failure_threshold: 3
          timeout: 1m
    """)
    fresh, kept = 12, 8
    # the harness's start-up probe is one accepted connection (maybe not counted yet)
    wait_for(lambda: scrape(lv).get("levee_client_connections_accepted_total") >= 1, 10, 0.02,
             "the harness's probe connection to be counted")
    before = scrape(lv)                       # a scrape before any traffic is valid too
    assert before.get("levee_config_generation") == 1
    accepted0 = before.get("levee_client_connections_accepted_total")
    assert accepted0 == 1, accepted0

    seen = send(lv, fresh)                    # a new connection each
    ka = lv.client()
    seen += send(lv, kept, client=ka)         # one keep-alive connection, left open
    n = fresh + kept
    m = scrape(lv)

    assert seen == Counter({"b1": n}), seen
    for name, kind in README_METRICS.items():
        assert name in m.families, f"{name} (README's metrics table) is not exposed"
        assert m.type(name) == kind, f"{name}: TYPE {m.type(name)}, README says {kind}"
    # requests
    assert m.get("proxy_requests_total", status="200", backend="b1") == n
    assert m.sum("proxy_requests_total") == n
    assert m.get("proxy_request_duration_seconds_count") == n
    assert m.get("proxy_request_duration_seconds_sum") > 0
    # dead refused 3 times, each retried on b1; then its breaker opened
    assert m.get("levee_backend_attempts_total", backend="dead") == 3
    assert m.get("levee_backend_errors_total", backend="dead") == 3
    assert m.get("levee_backend_attempts_total", backend="b1") == n
    assert m.get("levee_backend_errors_total", backend="b1") == 0
    assert m.get("levee_retries_total") == 3
    assert m.get("levee_attempt_failures_total", reason="connect_failed") == 3
    assert m.get("levee_request_attempts_count") == n
    assert m.get("levee_request_attempts_sum") == n + 3
    assert m.get("levee_request_attempts_bucket", le="1") == n - 3
    assert m.get("levee_request_attempts_bucket", le="2") == n
    assert m.get("backend_health", backend="b1") == 1
    assert m.get("backend_health", backend="dead") == 0
    assert m.get("circuit_breaker_state", backend="b1") == 0
    assert m.get("circuit_breaker_state", backend="dead") == 1
    assert m.get("levee_breaker_transitions_total", backend="dead") == 1
    assert m.get("levee_backend_active_requests", backend="b1") == 0
    assert m.get("levee_backend_response_seconds_count", backend="b1") == n
    assert m.get("levee_backend_admin_state", backend="b1") == 0
    assert m.get("levee_request_ids_generated_total") == n
    # connections: our keep-alive one is open, a pooled one to b1 is kept
    assert m.get("levee_client_connections_accepted_total") - accepted0 == fresh + 1
    assert 1 <= m.get("levee_client_connections") <= 3, m.get("levee_client_connections")
    assert 1 <= m.get("levee_backend_connections") <= 4, m.get("levee_backend_connections")
    assert m.get("levee_backend_connections_opened_total", backend="b1") >= 1
    assert (m.get("levee_backend_connections_opened_total", backend="b1")
            + m.get("levee_backend_connection_reuses_total", backend="b1")) == n
    # process and configuration
    assert m.get("levee_config_reloads_total", result="success") == 0
    assert m.get("levee_config_reloads_total", result="failure") == 0
    assert m.get("levee_config_generation") == 1
    assert m.get("levee_workers") == 1
    assert abs(m.get("process_start_time_seconds") - time.time()) < 300

    ka.close()
    wait_for(lambda: scrape(lv).get("levee_client_connections") == 0, 10, 0.05,
             "levee_client_connections back to 0 after the client closed")


def test_build_info_names_the_binary_version_and_revision(h):
    lv = h.levee("backends: []\n")

    info = scrape(lv).series("levee_build_info")

    assert len(info) == 1 and info[0][1] == 1, info
    labels = info[0][0]
    version = (REPO_ROOT / "VERSION").read_text().strip()
    assert labels.get("version") == version and labels.get("revision"), info
    printed = run_levee(["--version"], lv.workdir).stdout
    assert printed.splitlines()[0] == f"levee {version} ({labels['revision']})", (
        f"levee_build_info {labels} and `levee --version` ({printed.strip()}) disagree")


def test_metrics_count_no_backend_answers(h):
    lv = h.levee("backends: []\n")

    answers = [lv.get(f"/x/{i}") for i in range(4)]

    assert all(error_body(r)["error"] == "no_backend" for r in answers), answers
    m = scrape(lv)
    assert m.get("levee_generated_responses_total", reason="no_backend", status="503") == 4
    assert m.get("proxy_requests_total", status="503", backend="none") == 4
    assert m.sum("levee_generated_responses_total") == 4
    assert m.get("proxy_request_duration_seconds_count") == 4


# --------------------------------------------------------------------------
# /api/history and the dashboard


def test_history_points_add_up_to_the_traffic(h):
    b1 = h.demo("b1")
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b1.url}
        retry:
          retry_on: [connect_failure]
    """)
    ok, failed = 10, 3

    send(lv, ok)
    for i in range(failed):
        assert lv.get(f"/status/500?{i}").status == 500

    def totals():
        doc = admin_json(lv, "/api/history")
        pts = doc["points"]
        return doc, sum(p["rps"] for p in pts), sum(p["backends"].get("b1", {}).get("rps", 0)
                                                     for p in pts)

    wait_for(lambda: totals()[1] == ok + failed, 15, 0.1,
             "history points to account for every request")
    doc, total, b1_total = totals()
    assert doc["interval_ms"] == 1000
    pts = doc["points"]
    assert total == ok + failed and b1_total == ok + failed, pts
    ts = [p["t"] for p in pts]
    assert ts == sorted(ts) and abs(ts[-1] - time.time() * 1000) < 60_000, ts
    for p in pts:
        assert {"t", "rps", "error_rate", "p50_ms", "p99_ms", "backends"} <= set(p), p
        assert 0 <= p["error_rate"] <= 1, p
        for bid, b in p["backends"].items():
            assert {"rps", "errors", "state"} <= set(b), p
            assert b["state"] in ("ok", "unhealthy", "open", "half_open", "draining",
                                  "disabled"), p
    busy = [p for p in pts if p["rps"] > 0]
    assert busy and all(p["p50_ms"] > 0 for p in busy), busy
    assert sum(p["error_rate"] * p["rps"] for p in pts) == pytest.approx(failed, abs=0.05)
    assert sum(p["backends"]["b1"]["errors"] for p in pts if "b1" in p["backends"]) == failed


def test_dashboard_page(h):
    lv = h.levee("backends: []\n")

    resp = admin_get(lv, "/")

    assert resp.status == 200, resp
    assert resp.headers.get("content-type", "").split(";")[0].strip() == "text/html", resp
    page = resp.body.decode("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html"), page[:200]
    assert "levee" in page.lower() and "</html>" in page.lower()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.IGNORECASE)
    assert not external, f"the dashboard must not load external resources: {external}"


# --------------------------------------------------------------------------
# errors, the token rule, off


def test_unknown_path_is_404_and_wrong_method_is_405(h):
    lv = h.levee("backends: []\n")

    unknown = admin_get(lv, "/no/such/thing")
    posts = {p: admin_request(lv, "POST", p) for p in ("/metrics", "/health", "/backends/health",
                                                       "/api/history")}
    delete = admin_request(lv, "DELETE", "/metrics")

    assert unknown.status == 404, unknown
    assert isinstance(json_of(unknown), dict)
    for path, resp in {**posts, "DELETE /metrics": delete}.items():
        assert resp.status == 405, (path, resp)
        assert isinstance(json_of(resp), dict), (path, resp)
    assert admin_get(lv, "/metrics").status == 200  # the listener still answers


def test_admin_off_loopback_needs_a_token(h):
    text = """\
backends: []
admin:
  listen: 0.0.0.0:19901
"""
    result = h.check(text)

    assert result.returncode == 1, result
    errs = [ln for ln in result.stderr.splitlines() if ln.startswith(result.path + ":")]
    assert len(errs) == 1, result.stderr
    m = re.match(re.escape(result.path) + r":(\d+):(\d+): (.*)$", errs[0])
    assert m, errs
    line, col, msg = int(m.group(1)), int(m.group(2)), m.group(3)
    assert line == 3 and col in (3, 11), f"should point at admin.listen (3:3 or 3:11): {errs[0]}"
    assert re.search(r"admin[.: ]+listen", msg) and "token" in msg, msg

    ok = h.check(text + "  token: s3cret\n", name="check-token.yaml")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok


def test_admin_listen_off(h):
    b1 = h.demo("b1")
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b1.url}
        admin:
          listen: off
    """)

    assert lv.admin_port is None
    resp = lv.get("/health")
    assert resp.status == 200 and resp.json()["status"] == "healthy", resp
    ports = listening_ports(lv.pid)
    assert ports == {lv.port}, f"levee listens on {sorted(ports)}; only {lv.port} expected"
    assert "admin: listening" not in lv.stderr()
