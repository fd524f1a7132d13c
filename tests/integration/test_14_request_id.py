"""14 — X-Request-Id: every request carries one. A client's valid id (1 to 128
of A-Za-z0-9-_.:/+=@) is kept; without one, or with an invalid one, levee
makes one. The same id reaches the backend (the demo's /echo lists the headers
it received), comes back to the client (levee's own responses included) and
ends the access log line (combined: last field; json: "request_id")."""

import json
import re

import pytest

from adminutil import metric
from harness import error_body, parse_combined

ID_CHARS = re.compile(r"[A-Za-z0-9\-_.:/+=@]{1,128}")


def echo_start(h, **kw):
    b = h.demo("b1")
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b.url}
    """, **kw)
    return b, lv


def one_id(resp):
    """The single X-Request-Id of a response (checked to be a valid id)."""
    ids = resp.headers.get_all("x-request-id")
    assert len(ids) == 1, f"expected exactly one X-Request-Id in the response: {resp!r}"
    assert ID_CHARS.fullmatch(ids[0]), f"response X-Request-Id is not a valid id: {ids[0]!r}"
    return ids[0]


def backend_ids(resp):
    """The X-Request-Id values the demo backend received (from /echo's JSON)."""
    assert resp.status == 200, resp
    seen = json.loads(resp.body)["headers"]
    return [v for k, v in seen if k.lower() == "x-request-id"]


def log_ids(lv, n):
    return [parse_combined(line)["request_id"] for line in lv.access_log_lines(n)]


def test_request_without_id_gets_one_at_the_backend_the_client_and_the_log(h):
    _b, lv = echo_start(h)

    first = lv.get("/echo/one")
    second = lv.get("/echo/two")

    ids = [one_id(first), one_id(second)]
    assert backend_ids(first) == [ids[0]], "the backend must see the id the client gets"
    assert backend_ids(second) == [ids[1]]
    assert ids[0] != ids[1], f"two requests got the same generated id {ids[0]!r}"
    assert len(ids[0]) >= 16, f"a generated id should be hard to collide: {ids[0]!r}"
    assert log_ids(lv, 2) == ids, "the access log's last field is the request id"
    assert metric(lv, "levee_request_ids_generated_total") == 2


@pytest.mark.parametrize("rid", [
    "x",
    "abc-123_DEF.456",
    "trace:9f/span+1=ok@edge",
    "0123456789abcdef0123456789abcdef01234567",       # 40 characters
    "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + "a" * 11,  # 64
    "R" * 128,                                         # the documented maximum
], ids=["1char", "simple", "all-punctuation", "40chars", "64chars", "128chars"])
def test_valid_client_id_is_kept_end_to_end(h, rid):
    _b, lv = echo_start(h)

    resp = lv.get("/echo/kept", [("X-Request-Id", rid)])

    assert one_id(resp) == rid, f"levee replaced a valid client id of {len(rid)} characters"
    assert backend_ids(resp) == [rid], "the backend must get the client's id, once"
    assert log_ids(lv, 1) == [rid]
    assert metric(lv, "levee_request_ids_generated_total") == 0


@pytest.mark.parametrize("values", [
    ["has space"],
    ["R" * 129],
    ['quote"d'],
    ["semi;colon"],
    ["caf\xe9"],
    [""],
    ["first-id", "second-id"],
], ids=["space", "129chars", "quote", "semicolon", "non-ascii", "empty", "two-values"])
def test_invalid_client_id_is_replaced(h, values):
    _b, lv = echo_start(h)

    resp = lv.get("/echo/replaced", [("X-Request-Id", v) for v in values])

    rid = one_id(resp)
    assert rid not in values, f"levee kept an invalid (or ambiguous) client id: {values!r}"
    assert backend_ids(resp) == [rid], (
        "the backend must see exactly the id levee answered with, and none of the client's")
    assert log_ids(lv, 1) == [rid]
    assert metric(lv, "levee_request_ids_generated_total") == 1


def test_levee_own_responses_carry_the_id(h):
    dead = h.closed_port()
    lv = h.levee(f"""
        backends:
          - id: dead
            url: http://127.0.0.1:{dead}
        retry:
          max_attempts: 1
        circuit_breaker:
          failure_threshold: 2
          timeout: 1m
        rate_limit:
          requests_per_second: 1000
          per_client:
            requests_per_second: 0.01
            burst: 3
    """)
    c = lv.client()

    refused = c.get("/a")                                      # 502: the backend refuses
    second = c.get("/b", [("X-Request-Id", "client-5xx")])     # refused again: breaker opens
    no_backend = c.get("/c")                                   # 503: its breaker is open
    limited = c.get("/d", [("X-Request-Id", "client-429")])    # 429: over the client's burst
    limited2 = c.get("/e")                                     # 429 with a generated id

    assert error_body(refused)["error"] == "connect_failed"
    assert second.status in (502, 503) and error_body(second)
    assert error_body(no_backend)["error"] == "no_backend"
    assert limited.status == 429 and limited2.status == 429, (limited, limited2)
    answers = (refused, second, no_backend, limited, limited2)
    ids = [one_id(r) for r in answers]
    assert ids[1] == "client-5xx" and ids[3] == "client-429", ids
    assert len({ids[0], ids[2], ids[4]}) == 3, f"generated ids repeat: {ids}"
    assert log_ids(lv, 5) == ids


def test_health_answer_on_the_proxy_port_carries_the_id(h):
    _b, lv = echo_start(h)

    mine = lv.get("/health", [("X-Request-Id", "lb-probe-1")])
    generated = lv.get("/health")

    assert mine.status == 200 and one_id(mine) == "lb-probe-1"
    assert generated.status == 200 and one_id(generated) != "lb-probe-1"


@pytest.mark.parametrize("raw,reason", [
    (b"GET /" + b"u" * 200 + b" HTTP/1.1\r\nHost: a\r\nX-Request-Id: too-long-uri\r\n\r\n",
     "uri_too_long"),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: bad-framing\r\nContent-Length: 1\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "bad_framing"),
    (b"GET /x HTTP/1.1\r\nX-Request-Id: no-host\r\n\r\n", "bad_request"),
], ids=["414", "400-bad-framing", "400-no-host"])
def test_client_error_answers_carry_an_id(h, raw, reason):
    """levee's answers to malformed requests are levee's own responses too: they
    carry an id (the client's, or a generated one) like every other answer."""
    b = h.demo("b1")
    lv = h.levee(f"""
        backends:
          - id: b1
            url: {b.url}
        limits:
          max_uri: 100
    """)
    c = lv.client()
    c.send(raw)

    resp = c.read_response()

    assert error_body(resp)["error"] == reason
    one_id(resp)


def test_json_access_log_has_the_request_id(h):
    _b, lv = echo_start(h, access_log_format="json")

    mine = lv.get("/echo/1", [("X-Request-Id", "json-id-1")])
    generated = lv.get("/echo/2")

    lines = [json.loads(line) for line in lv.access_log_lines(2)]
    assert [entry["request_id"] for entry in lines] == ["json-id-1", one_id(generated)]
    assert one_id(mine) == "json-id-1"
