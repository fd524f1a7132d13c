"""88 — the access log, combined and json: one line per request, with client,
time, request, status, bytes, referer, user agent, duration, backend,
attempts and reason."""

import json
import time
from datetime import datetime, timezone

from harness import client_ip, error_body, parse_combined, serve


def app_backend(h):
    """/page: 1234 bytes after 300 ms; /submit: 201 with 10 bytes."""
    def respond(conn, req):
        if req.path == "/page":
            time.sleep(0.3)
            conn.respond(200, b"p" * 1234)
        else:
            conn.respond(201, b"s" * 10)

    return h.scripted(serve(respond), id="app")


PLAIN_UA = "levee-test/1.0 (integration; +levee)"
# How combined escapes a quote is a matter of taste; JSON's escaping is not.
QUOTING_UA = 'levee-test/1.0 (with "quotes" and \\ backslash)'


def send_two(lv, ua):
    c = lv.client(source_ip=client_ip())
    first = c.get("/page?x=1", [("Referer", "http://ref.example/from"), ("User-Agent", ua)])
    second = c.request("POST", "/submit", body=b"data")
    assert (first.status, len(first.body)) == (200, 1234)
    assert (second.status, len(second.body)) == (201, 10)


def test_combined_format(h):
    b = app_backend(h)
    lv = h.levee(f"""
        backends:
          - id: app
            url: {b.url}
    """, access_log_format="combined")

    send_two(lv, PLAIN_UA)
    lines = lv.access_log_lines(2)

    assert len(lines) == 2, lines
    first, second = parse_combined(lines[0]), parse_combined(lines[1])
    assert first["client"] == client_ip()
    logged = datetime.strptime(first["time"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs((datetime.now(timezone.utc) - logged).total_seconds()) < 300
    assert first["request"] == "GET /page?x=1 HTTP/1.1"
    assert (first["status"], first["bytes"]) == (200, 1234)
    assert first["referer"] == "http://ref.example/from"
    assert first["user_agent"] == PLAIN_UA
    assert 0.25 <= first["duration"] < 10, first
    assert (first["backend"], first["attempts"], first["reason"]) == ("app", 1, "-")

    assert second["request"] == "POST /submit HTTP/1.1"
    assert (second["status"], second["bytes"]) == (201, 10)
    assert (second["referer"], second["user_agent"]) == ("-", "-")
    assert (second["backend"], second["attempts"], second["reason"]) == ("app", 1, "-")


def test_combined_format_for_levee_generated_errors(h):
    port = h.closed_port()
    lv = h.levee(f"""
        backends:
          - id: gone
            url: http://127.0.0.1:{port}
    """)

    resp = lv.client().get("/x")

    assert error_body(resp)["error"] == "connect_failed"
    line = parse_combined(lv.access_log_lines(1)[0])
    assert (line["status"], line["reason"], line["backend"]) == (502, "connect_failed", "gone")
    assert line["bytes"] == len(resp.body)
    assert line["attempts"] >= 1


JSON_KEYS = {"time", "client", "method", "path", "protocol", "status", "bytes", "duration_ms",
             "backend", "attempts", "reason", "referer", "user_agent"}


def test_json_format(h):
    b = app_backend(h)
    lv = h.levee(f"""
        backends:
          - id: app
            url: {b.url}
    """, access_log_format="json")

    send_two(lv, QUOTING_UA)
    lines = lv.access_log_lines(2)

    assert len(lines) == 2, lines
    first, second = (json.loads(x) for x in lines)  # a UA with quotes must not break it
    for rec in (first, second):
        assert JSON_KEYS <= set(rec), f"missing keys {JSON_KEYS - set(rec)} in {rec}"
        assert isinstance(rec["time"], str) and rec["time"]
        assert rec["client"] == client_ip()
        assert rec["protocol"] == "HTTP/1.1"
        assert (rec["backend"], rec["attempts"], rec["reason"]) == ("app", 1, None)
    assert (first["method"], first["status"], first["bytes"]) == ("GET", 200, 1234)
    assert first["path"] in ("/page?x=1", "/page"), first
    assert first["referer"] == "http://ref.example/from"
    assert first["user_agent"] == QUOTING_UA
    assert 250 <= first["duration_ms"] < 10000, first
    assert (second["method"], second["path"], second["status"], second["bytes"]) == \
        ("POST", "/submit", 201, 10)
    assert second["referer"] in (None, "", "-") and second["user_agent"] in (None, "", "-")


def test_json_format_without_backend(h):
    lv = h.levee("""
        backends: []
    """, access_log_format="json")

    resp = lv.client().get("/nothing")

    assert resp.status == 503
    rec = json.loads(lv.access_log_lines(1)[0])
    assert (rec["status"], rec["backend"], rec["reason"]) == (503, None, "no_backend")
    assert rec["bytes"] == len(resp.body)


# Bytes a client may send in a field value (obs-text included) that must not
# end the field, forge a line, or leave the log invalid UTF-8 / invalid JSON.
RAW_UA = b'evil "x" \\ caf\xc3\xa9 \xff'


def test_client_bytes_are_escaped_in_both_formats(h):
    b = app_backend(h)
    got = {}
    for fmt in ("combined", "json"):
        lv = h.levee(f"""
            backends:
              - id: app
                url: {b.url}
        """, access_log_format=fmt, name=f"levee-{fmt}")
        c = lv.client()
        c.send(b"GET /submit HTTP/1.1\r\nHost: x\r\nUser-Agent: " + RAW_UA + b"\r\n\r\n")
        assert c.read_response().status == 201
        got[fmt] = lv.access_log_lines(1)
        raw = lv.access_log_path.read_bytes()
        assert raw.isascii(), raw
    (line,) = got["combined"]
    assert parse_combined(line)["user_agent"] == r"evil \x22x\x22 \x5C caf\xC3\xA9 \xFF", line
    (line,) = got["json"]
    assert json.loads(line)["user_agent"] == 'evil "x" \\ caf\u00c3\u00a9 \u00ff', line
