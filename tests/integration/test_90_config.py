"""90 — configuration: `levee -t -c FILE` accepts the spec's snippet and full
configs, and reports every error as FILE:LINE:COL: message, with the right
line (and, for an unknown key, the right column)."""

import re
import subprocess

import pytest

from harness import run_levee

SPEC_SNIPPET = """\
backends:
  - id: backend1
    url: http://localhost:8001
    weight: 1
    health_check_enabled: true
"""

ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$")


def errors(result):
    """The FILE:LINE:COL errors of a failed check: [(line, col, message)]."""
    out = []
    for text in result.stderr.splitlines():
        m = ERROR_LINE.match(text)
        if m and m.group("file") == result.path:
            out.append((int(m.group("line")), int(m.group("col")), m.group("msg")))
    return out


def assert_ok(result):
    assert result.returncode == 0, f"rc={result.returncode}\nstderr:\n{result.stderr}"
    assert "configuration OK" in result.stdout


def assert_errors(result, lines):
    """The check failed, and reported errors on exactly these lines."""
    assert result.returncode == 1, f"rc={result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}"
    assert "configuration OK" not in result.stdout
    found = errors(result)
    assert found, f"no FILE:LINE:COL: error for {result.path} in stderr:\n{result.stderr}"
    assert sorted({f[0] for f in found}) == sorted(lines), f"errors reported: {found}"
    for line, col, _msg in found:
        assert line >= 1 and col >= 1, found
    return found


# --------------------------------------------------------------------------
# accepted


def test_spec_snippet_loads_as_written(h):
    result = h.check(SPEC_SNIPPET)

    assert_ok(result)


def test_every_documented_key_is_accepted(h):
    result = h.check("""
        listen: 127.0.0.1:8080
        workers: 2
        backends:
          - id: backend1
            url: http://127.0.0.1:8001
            weight: 1
            health_check_enabled: true
          - id: backend-2.b_x
            url: http://localhost:8002
            weight: 1000
            health_check_enabled: false
        load_balancing: least_connections
        timeouts:
          connect: 1s
          per_try: 15s
          backend: 30s
          client_header: 10s
          client_body: 30s
          idle: 60s
          shutdown: 10s
        limits:
          max_body: 100MiB
          max_header_size: 32KiB
          max_headers: 100
          max_uri: 8KiB
        pool:
          max_idle: 64
          idle_timeout: 30s
        access_log:
          path: off
          format: json
        log_level: debug
    """)

    assert_ok(result)


@pytest.mark.parametrize("policy", ["round_robin", "random", "weighted", "least_connections"])
def test_every_balancer_is_accepted(h, policy):
    assert_ok(h.check(f"load_balancing: {policy}\nbackends: []\n"))


def test_units_are_accepted(h):
    result = h.check("""
        workers: auto
        backends: []
        timeouts:
          connect: 250ms
          per_try: 5s
          backend: 1m
          client_header: 2
          client_body: 1500ms
        limits:
          max_body: 1GiB
          max_header_size: 64KB
          max_uri: 4096
        pool:
          idle_timeout: 30
    """)

    assert_ok(result)


def test_an_empty_backends_list_is_accepted(h):
    assert_ok(h.check("backends: []\n"))


# --------------------------------------------------------------------------
# rejected


def test_unknown_top_level_key_is_reported_at_its_line_and_column(h):
    result = h.check("""
        listen: 127.0.0.1:8080
        listn: 127.0.0.1:8081
        backends: []
    """)

    [(line, col, msg)] = assert_errors(result, [2])
    assert col == 1
    assert "listn" in msg


def test_unknown_nested_key_is_reported_at_its_line_and_column(h):
    result = h.check("""
        listen: 127.0.0.1:8080
        backends:
          - id: b1
            url: http://127.0.0.1:8001
            wieght: 2
        timeouts:
          connect: 1s
    """)

    [(line, col, msg)] = assert_errors(result, [5])
    assert col == 5
    assert "wieght" in msg


def test_unknown_key_in_a_section_is_reported(h):
    result = h.check("""
        backends: []
        timeouts:
          connect: 1s
          conect_timeout: 2s
    """)

    [(line, col, msg)] = assert_errors(result, [4])
    assert col == 3
    assert "conect_timeout" in msg


BAD_VALUES = {
    # name: (text, line of the error)
    "duration_unit": ("backends: []\ntimeouts:\n  connect: 5 parsecs\n", 3),
    "duration_word": ("backends: []\ntimeouts:\n  idle: 2s\n  per_try: soon\n", 4),
    "size_unit": ("backends: []\nlimits:\n  max_body: 12 potatoes\n", 3),
    "url_scheme": ("backends:\n  - id: b1\n    url: ftp://127.0.0.1:21\n", 3),
    "url_garbage": ("backends:\n  - id: b1\n    url: not a url\n", 3),
    "backend_id_chars": ("backends:\n  - id: bad id!\n    url: http://127.0.0.1:8001\n", 2),
    "weight_zero": ("backends:\n  - id: b1\n    url: http://127.0.0.1:8001\n    weight: 0\n", 4),
    "weight_too_big": ("backends:\n  - id: b1\n    url: http://127.0.0.1:8001\n    weight: 1001\n", 4),
    "weight_not_a_number": ("backends:\n  - id: b1\n    url: http://127.0.0.1:8001\n    weight: heavy\n", 4),
    "load_balancing": ("backends: []\nload_balancing: fastest\n", 2),
    "workers_list": ("backends: []\nworkers: [1, 2]\n", 2),
    "backends_mapping": ("listen: 127.0.0.1:8080\nbackends: {id: b1}\n", 2),
    "limits_scalar": ("backends: []\nlimits: 5\n", 2),
    "log_level": ("backends: []\nlog_level: verbose\n", 2),
    "access_log_format": ("backends: []\naccess_log:\n  format: xml\n", 3),
    "listen": ("backends: []\nlisten: nowhere\n", 2),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_value_is_reported_at_its_line(h, case):
    text, line = BAD_VALUES[case]

    assert_errors(h.check(text), [line])


def test_duplicate_backend_id_is_reported_at_the_second(h):
    result = h.check("""
        backends:
          - id: b1
            url: http://127.0.0.1:8001
          - id: b2
            url: http://127.0.0.1:8002
          - id: b1
            url: http://127.0.0.1:8003
    """)

    [(line, _col, msg)] = assert_errors(result, [6])
    assert "b1" in msg


def test_all_errors_in_a_file_are_reported(h):
    result = h.check("""
        listen: 127.0.0.1:8080
        backends:
          - id: b1
            url: http://127.0.0.1:8001
            weight: -3
        load_balancing: sideways
        timeouts:
          connect: forever
        limits:
          max_uri: 8 lightyears
        colour: blue
    """)

    assert_errors(result, [5, 6, 8, 10, 11])


def test_yaml_syntax_error_is_reported_at_its_line(h):
    result = h.check("""
        listen: 127.0.0.1:8080
        workers: 1
        timeouts:
          connect: 1s: 2s
          idle: 5s
        log_level: info
    """)

    assert_errors(result, [4])


def test_running_with_a_bad_config_fails_with_the_same_report(h):
    path = h.write("bad.yaml", "backends: []\ntimeouts:\n  connect: 5 parsecs\n")

    try:
        result = run_levee(["-c", path], h.tmp_path, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("levee kept running with an invalid config")

    assert result.returncode != 0
    assert re.search(rf"^{re.escape(str(path))}:3:\d+: ", result.stderr, re.MULTILINE), result.stderr


# --------------------------------------------------------------------------
# pools and routes (issue 15): checked by -t; served from its second part

ISSUE_15_EXAMPLE = """\
pools:                      # named backend pools; each takes the keys that today are global
  api:
    backends: [{ id: api1, url: "http://127.0.0.1:8080" }, { id: api2, url: "http://127.0.0.2:8080" }]
    load_balancing: peak_ewma
    health_check: { path: /healthz }
    circuit_breaker: { failure_threshold: 5 }
    retry: { max_attempts: 3 }
    timeouts: { per_try: 2s }
  chat:
    backends: [{ id: chat1, url: "http://127.0.0.3:9000" }]
routes:                     # first match wins
  - match: { host: api.example.com, path_prefix: /v1/ }
    pool: api
    strip_prefix: /v1       # path rewrite
    rate_limit: { per_client: { requests_per_second: 20 } }
  - match: { path_prefix: /ws, headers: { Upgrade: websocket } }
    pool: chat
    timeouts: { tunnel: 1h }
  - match: { path_regex: '^/old/(.*)$' }
    redirect: { status: 301, location: '/new/$1' }
  - match: { path_exact: /robots.txt }
    respond: { status: 200, body: "User-agent: *\\nDisallow:\\n", content_type: text/plain }
"""


def variant(old, new):
    """The issue's example with one line changed (it must be there)."""
    assert old in ISSUE_15_EXAMPLE, old
    return ISSUE_15_EXAMPLE.replace(old, new, 1)


def warnings(result):
    """The FILE:LINE:COL: ... warning: lines: [(line, col, message)]."""
    return [(line, col, msg) for line, col, msg in errors(result) if "warning: " in msg]


def test_the_issue_15_example_is_accepted_as_written(h):
    result = h.check(ISSUE_15_EXAMPLE)

    assert_ok(result)
    assert result.stderr == "", result.stderr


def test_an_unknown_pool_is_reported_at_its_name(h):
    result = h.check(variant("    pool: chat\n", "    pool: chatt\n"))

    [(line, col, msg)] = assert_errors(result, [17])
    assert col == 11
    assert "unknown pool 'chatt' (pools: api, chat)" in msg


def test_a_duplicate_backend_id_across_pools_is_reported_at_the_second(h):
    result = h.check(variant('{ id: chat1, url: "http://127.0.0.3:9000" }',
                             '{ id: api2, url: "http://127.0.0.3:9000" }'))

    [(line, col, msg)] = assert_errors(result, [10])
    assert col == 22
    assert "backend id 'api2' is already in pool 'api'" in msg


def test_a_bad_regex_is_reported_with_pcre2s_message_at_its_column(h):
    result = h.check(variant("'^/old/(.*)$'", "'^/old/(.*$'"))

    [(line, col, msg)] = assert_errors(result, [19])
    # The pattern's quote is column 26; PCRE2 points at offset 10, its end.
    assert col == 37
    assert "missing closing parenthesis (at offset 10)" in msg
    assert "routes[2].match.path_regex" in msg


def test_a_shadowed_route_is_a_warning_and_the_file_loads(h):
    text = ISSUE_15_EXAMPLE + """\
  - match: { path_prefix: /v2 }
    pool: api
  - match: { path_prefix: /v2/users, methods: [GET] }
    pool: api
"""
    result = h.check(text)

    assert_ok(result)
    [(line, col, msg)] = warnings(result)
    assert (line, col) == (25, 5)
    assert "routes[5]: warning: never used: route 'routes[4]' (line 23)" in msg


def test_pools_and_routes_errors_are_all_reported_at_once(h):
    text = variant("    pool: chat\n", "    pool: nope\n")
    text = text.replace("{ status: 301, location: '/new/$1' }", "{ status: 301, location: '/new/$2' }")
    text = text.replace("path_exact: /robots.txt", "path_exact: /a/../robots.txt")
    text = text.replace("  chat:\n    backends: [{ id: chat1, url: \"http://127.0.0.3:9000\" }]\n",
                        "  chat:\n    backends: []\n")
    result = h.check(text)

    found = assert_errors(result, [9, 17, 20, 21])
    messages = " | ".join(msg for _l, _c, msg in found)
    for fragment in ("pool 'chat' has no backends", "unknown pool 'nope'",
                     "no capture group $2: path_regex has 1", "write '/robots.txt'"):
        assert fragment in messages, messages


def test_a_file_with_a_route_to_an_unknown_pool_does_not_start(h):
    text = variant("pool: chat", "pool: chats")
    path = h.write("routes.yaml", text.replace("pools:", "listen: 127.0.0.1:1\nadmin: { listen: 'off' }\npools:", 1))

    try:
        result = run_levee(["-c", path], h.tmp_path, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("levee ran with a route to a pool that does not exist")

    assert result.returncode != 0
    assert re.search(r"routes\.yaml:\d+:\d+: .*chats", result.stderr), result.stderr


def test_version_and_help(h):
    version = run_levee(["--version"], h.tmp_path, timeout=20)
    assert version.returncode == 0
    assert re.match(r"levee \d+\.\d+\.\d+", version.stdout), version.stdout

    usage = run_levee(["--help"], h.tmp_path, timeout=20)
    assert usage.returncode == 0
    text = usage.stdout + usage.stderr
    assert "-c" in text and "-t" in text, text


def test_the_cache_section_of_issue_16_loads_as_written(h):
    result = h.check("""
        backends: []
        cache:
          enabled: true
          max_size: 256MiB          # memory for all cached responses, all workers together
          max_object_size: 8MiB     # larger responses stream through uncached
          default_ttl: 0s           # for responses with no freshness information (0: heuristic only)
          serve_stale_on_error: 1h  # beyond stale-if-error
          key: [method, host, path, query]   # plus the response's Vary
    """)

    assert_ok(result)


def test_cache_errors_are_reported_at_their_line(h):
    result = h.check("""
        backends: []
        cache:
          max_size: 1MiB
          max_object_size: 2MiB
    """)

    [(_line, _col, msg)] = assert_errors(result, [4])
    assert "max_object_size (2097152 bytes) is larger than max_size (1048576 bytes)" in msg

    result = h.check("""
        backends: []
        cache:
          enabled: true
          key: [method, url]
          targeted_fields: ["not a name"]
          default_ttl: soon
    """)

    found = assert_errors(result, [4, 5, 6])
    messages = " | ".join(msg for _line, _col, msg in found)
    assert "unknown key part 'url'" in messages
    assert "is not a header field name" in messages
    assert "is not a duration" in messages
