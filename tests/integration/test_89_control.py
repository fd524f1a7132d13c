"""89 — control endpoints of the admin listener: POST /backends/{id}/drain
(no new requests, in-flight ones finish), /disable (out of rotation),
/enable (back); 404 for an unknown backend, 405 for GET; with admin.token,
`Authorization: Bearer TOKEN` is required on control endpoints (401 without it
or with a wrong one) but not on GET endpoints."""

from collections import Counter

from adminutil import (
    Background,
    admin_get,
    admin_json,
    admin_post,
    admin_request,
    backend_of,
    backends_health,
    json_of,
    metric,
    reload_post,
    send,
)
from harness import PORTS, error_body, wait_for


def two(h, admin=""):
    a, b = h.demo("a"), h.demo("b")
    lv = h.levee(f"""
        backends:
          - id: a
            url: {a.url}
          - id: b
            url: {b.url}
        load_balancing: round_robin
        retry:
          hedge_after: off
        {admin}
    """)
    return a, b, lv


def control(lv, bid, verb, headers=None):
    resp = admin_post(lv, f"/backends/{bid}/{verb}", headers)
    return resp.status, json_of(resp)


def test_drain_lets_the_request_in_flight_finish_and_sends_nothing_new(h):
    a, b, lv = two(h)
    slow = Background(lv.get, "/delay/1s")
    busy = wait_for(lambda: [k for k, v in backends_health(lv).items()
                             if k and v["active_requests"] == 1], 15, 0.02,
                    "the slow request in flight")
    assert len(busy) == 1, busy
    target = busy[0]
    other = "b" if target == "a" else "a"

    status, body = control(lv, target, "drain")

    assert (status, body) == (200, {"ok": True, "backend": target, "admin_state": "draining"})
    entry = backends_health(lv)[target]
    assert (entry["admin_state"], entry["usable"]) == ("draining", False), entry
    assert entry.get("state", "draining") == "draining", entry
    assert send(lv, 10) == Counter({other: 10}), "a draining backend got a new request"
    resp = slow.result()
    assert (resp.status, backend_of(resp)) == (200, target), resp
    assert resp.complete and slow.elapsed >= 0.9, (resp, slow.elapsed)
    entry = backends_health(lv)[target]
    assert (entry["active_requests"], entry["requests"]) == (0, 1), entry
    assert metric(lv, "levee_backend_admin_state", backend=target) == 1
    assert metric(lv, "backend_health", backend=target) == 0
    assert send(lv, 4) == Counter({other: 4})


def test_disable_takes_a_backend_out_and_enable_brings_it_back(h):
    a, b, lv = two(h)
    assert set(send(lv, 4)) == {"a", "b"}

    status, body = control(lv, "b", "disable")

    assert (status, body) == (200, {"ok": True, "backend": "b", "admin_state": "disabled"})
    entry = backends_health(lv)["b"]
    assert (entry["admin_state"], entry["usable"]) == ("disabled", False), entry
    assert metric(lv, "levee_backend_admin_state", backend="b") == 2
    health = admin_json(lv, "/health")
    assert (health["status"], health["backends"]) == ("degraded", {"healthy": 1, "total": 2})
    b_before = b.stats()["requests"]
    assert send(lv, 10) == Counter({"a": 10})
    assert b.stats()["requests"] == b_before

    status, body = control(lv, "a", "disable")  # nobody left: 503 no_backend

    assert status == 200 and body["admin_state"] == "disabled"
    assert error_body(lv.get("/none"))["error"] == "no_backend"
    assert admin_get(lv, "/health").status == 503

    for bid in ("a", "b"):
        status, body = control(lv, bid, "enable")
        assert (status, body) == (200, {"ok": True, "backend": bid, "admin_state": "enabled"})
    back = send(lv, 10)
    assert back["b"] >= 3 and back["a"] >= 3, f"traffic after enable: {back}"
    entry = backends_health(lv)["b"]
    assert (entry["admin_state"], entry["usable"]) == ("enabled", True), entry
    assert metric(lv, "levee_backend_admin_state", backend="b") == 0
    assert admin_json(lv, "/health")["status"] == "healthy"


def test_unknown_backend_is_404_and_get_on_a_control_endpoint_is_405(h):
    _a, _b, lv = two(h)

    unknown = admin_post(lv, "/backends/nope/drain")
    bad_verb = admin_post(lv, "/backends/a/explode")
    gets = [admin_get(lv, p) for p in ("/backends/a/drain", "/backends/a/disable",
                                       "/backends/a/enable", "/reload")]
    put = admin_request(lv, "PUT", "/backends/a/enable", body=b"")

    assert unknown.status == 404 and json_of(unknown), unknown
    assert bad_verb.status == 404 and json_of(bad_verb), bad_verb
    for resp in gets + [put]:
        assert resp.status == 405 and json_of(resp), resp
    assert backends_health(lv)["a"]["admin_state"] == "enabled", "a GET must not drain"


def test_token_guards_control_endpoints_only(h):
    port = PORTS.get()
    _a, _b, lv = two(h, admin=f"""admin:
          listen: 127.0.0.1:{port}
          token: s3cret""")
    assert lv.admin_port == port

    refused = {
        "none": control(lv, "a", "disable"),
        "wrong": control(lv, "a", "disable", [("Authorization", "Bearer wrong")]),
        "prefix": control(lv, "a", "disable", [("Authorization", "Bearer s3cre")]),
        "longer": control(lv, "a", "disable", [("Authorization", "Bearer s3cret2")]),
        "scheme": control(lv, "a", "disable", [("Authorization", "Basic s3cret")]),
        "bare": control(lv, "a", "disable", [("Authorization", "s3cret")]),
    }
    reload_refused = reload_post(lv)

    for what, (status, body) in {**refused, "reload": reload_refused}.items():
        assert status == 401 and isinstance(body, dict), (what, status, body)
    assert backends_health(lv)["a"]["admin_state"] == "enabled", "a refused call changed state"
    assert metric(lv, "levee_config_reloads_total", result="success") == 0
    for path in ("/metrics", "/health", "/backends/health", "/api/history", "/"):
        assert admin_get(lv, path).status == 200, f"GET {path} must not need the token"

    good = [("Authorization", "Bearer s3cret")]
    status, body = control(lv, "a", "disable", good)
    assert (status, body) == (200, {"ok": True, "backend": "a", "admin_state": "disabled"})
    assert send(lv, 4) == Counter({"b": 4})
    status, body = control(lv, "a", "enable", good)
    assert (status, body) == (200, {"ok": True, "backend": "a", "admin_state": "enabled"})
