"""Helpers for the admin, metrics, reload and control tests (test_14, 85, 87, 89):
admin requests, a strict parser of the Prometheus text format, config rewrites
for reloads that keep what the harness filled in, and a look at the sockets a
process listens on. Standard library only.
"""

import json
import math
import os
import re
import signal
import threading
import time
from collections import Counter

from harness import (
    DEADLINE,
    RawClient,
    http_get,
    port_accepts,
    wait_for,
    yaml_text,
)

# --------------------------------------------------------------------------
# admin requests


def admin_ready(lv, timeout=DEADLINE):
    """Wait (once per levee process) until its admin listener accepts: levee opens
    it just after the proxy listeners, which the harness waited for."""
    assert lv.admin_port, "this levee has no admin listener"
    if getattr(lv, "_admin_ready_pid", None) != lv.pid:
        wait_for(lambda: port_accepts(lv.admin_host, lv.admin_port), timeout, 0.02,
                 f"the admin listener {lv.admin_host}:{lv.admin_port}")
        lv._admin_ready_pid = lv.pid


def admin_headers(lv, headers=None, control=True):
    """`headers` plus what levee's admin port asks of its clients, unless the
    caller set them: a Host naming the listener (127.0.0.1:PORT; anything else
    is 421), and `X-Levee-Admin: 1` (a POST needs it on a loopback listener
    without admin.token; control=False leaves it out)."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if "host" not in names:
        hdrs.insert(0, ("Host", f"{lv.admin_host}:{lv.admin_port}"))
    if control and "x-levee-admin" not in names:
        hdrs.append(("X-Levee-Admin", "1"))
    return hdrs


def admin_get(lv, path, headers=None, timeout=DEADLINE):
    """GET on the admin listener (fresh connection, Connection: close)."""
    admin_ready(lv)
    return http_get(lv.admin_port, path, admin_headers(lv, headers, control=False), timeout,
                    host=lv.admin_host)


def admin_request(lv, method, path, headers=None, body=None, timeout=DEADLINE, control=True):
    """Any method on the admin listener (fresh connection, Connection: close),
    with the headers of admin_headers()."""
    hdrs = admin_headers(lv, headers, control)
    hdrs.append(("Connection", "close"))
    if method == "POST" and body is None:
        body = b""
    admin_ready(lv)
    c = RawClient(lv.admin_port, host=lv.admin_host, timeout=timeout)
    try:
        return c.request(method, path, hdrs, body)
    finally:
        c.close()


def admin_post(lv, path, headers=None, timeout=DEADLINE, control=True):
    return admin_request(lv, "POST", path, headers, timeout=timeout, control=control)


def json_of(resp):
    """The JSON body of an admin answer, after checking it is JSON and not cached."""
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", (
        f"admin answer should be application/json: {resp!r}")
    assert "no-store" in resp.headers.get("cache-control", "").lower(), (
        f"admin answers carry Cache-Control: no-store: {resp!r}")
    try:
        return json.loads(resp.body)
    except ValueError:
        raise AssertionError(f"admin answer is not JSON: {resp!r}") from None


def admin_json(lv, path, status=200):
    resp = admin_get(lv, path)
    assert resp.status == status, f"GET {path} on the admin port: {resp!r}"
    return json_of(resp)


def backends_health(lv):
    """{id: entry} from GET /backends/health (plus the whole document as [None])."""
    doc = admin_json(lv, "/backends/health")
    out = {b["id"]: b for b in doc["backends"]}
    out[None] = doc
    return out


def backend_entry(lv, id):
    return backends_health(lv)[id]


# --------------------------------------------------------------------------
# Prometheus text format (version 0.0.4), parsed strictly

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_VALUE = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN)"
_SAMPLE = re.compile(rf"^(?P<name>{_NAME})(?:\{{(?P<labels>.*)\}})? (?P<value>{_VALUE})"
                     r"(?: (?P<ts>-?[0-9]+))?$")
_LABEL_PAIR = re.compile(rf'\s*(?P<k>{_LABEL})="(?P<v>(?:[^"\\\n]|\\[\\"n])*)"\s*(?:,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = _LABEL_PAIR.match(text, pos)
        assert m and m.end() > pos, f"bad label set in metrics line: {line!r}"
        k = m.group("k")
        assert k not in labels, f"label {k} twice in: {line!r}"
        labels[k] = m.group("v").replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


class Metrics:
    """A scrape: `families` {name: {"type", "help", "samples": [(name, labels, value)]}}."""

    def __init__(self, text):
        self.text = text
        self.families = {}
        self.samples = {}  # (name, frozenset(labels.items())) -> value
        self._parse(text)

    def _family_of(self, name):
        if name in self.families:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                fam = self.families.get(base)
                if fam and fam["type"] in ("histogram", "summary"):
                    if suffix == "_bucket" and fam["type"] != "histogram":
                        continue
                    return base
        return None

    def _parse(self, text):
        assert text.endswith("\n"), "the exposition must end with a newline"
        current = None  # family whose samples may follow
        seen_samples = set()  # families that already had samples
        for line in text.split("\n")[:-1]:
            assert line == line.strip() or line.startswith("# "), f"stray whitespace: {line!r}"
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    assert len(parts) >= 3, f"bad {parts[1]} line: {line!r}"
                    name = parts[2]
                    assert re.fullmatch(_NAME, name), f"bad metric name in {line!r}"
                    assert name not in seen_samples, (
                        f"{parts[1]} for {name} after its samples: {line!r}")
                    fam = self.families.setdefault(name, {"type": None, "help": None, "samples": []})
                    if parts[1] == "HELP":
                        assert fam["help"] is None, f"second HELP for {name}"
                        assert len(parts) == 4 and parts[3].strip(), f"empty HELP: {line!r}"
                        fam["help"] = parts[3]
                    else:
                        assert fam["type"] is None, f"second TYPE for {name}"
                        assert len(parts) == 4 and parts[3] in _TYPES, f"bad TYPE: {line!r}"
                        fam["type"] = parts[3]
                    current = name
                continue  # any other comment is allowed
            assert line, "empty line in the exposition"
            m = _SAMPLE.match(line)
            assert m, f"metrics line is not `name{{labels}} value`: {line!r}"
            name = m.group("name")
            fam_name = self._family_of(name)
            assert fam_name is not None, f"sample {name} has no TYPE before it: {line!r}"
            assert fam_name == current, (
                f"sample of {fam_name} outside its group (after {current}): {line!r}")
            fam = self.families[fam_name]
            assert fam["help"] is not None and fam["type"] is not None, (
                f"{fam_name} needs HELP and TYPE before its samples")
            labels = _parse_labels(m.group("labels") or "", line)
            value = float(m.group("value"))
            key = (name, frozenset(labels.items()))
            assert key not in self.samples, f"duplicate sample: {line!r}"
            self.samples[key] = value
            fam["samples"].append((name, labels, value))
            seen_samples.add(fam_name)
        self._check_families()

    def _check_families(self):
        for name, fam in self.families.items():
            assert fam["type"] and fam["help"], f"{name}: HELP and TYPE both needed"
            kind = fam["type"]
            if kind == "counter":
                assert name.endswith("_total"), f"counter {name} should end with _total"
                for sname, labels, value in fam["samples"]:
                    assert sname == name, f"counter {name} has a sample named {sname}"
                    assert value >= 0 and not math.isinf(value), f"{sname}{labels} = {value}"
            elif kind == "gauge":
                for sname, _labels, _value in fam["samples"]:
                    assert sname == name, f"gauge {name} has a sample named {sname}"
            elif kind == "histogram":
                self._check_histogram(name, fam)

    def _check_histogram(self, name, fam):
        series = {}
        for sname, labels, value in fam["samples"]:
            rest = {k: v for k, v in labels.items() if k != "le"}
            key = frozenset(rest.items())
            s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
            if sname == name + "_bucket":
                assert "le" in labels, f"{sname} without le: {labels}"
                s["buckets"].append((float(labels["le"]), value, labels["le"]))
            elif sname == name + "_sum":
                assert "le" not in labels
                s["sum"] = value
            elif sname == name + "_count":
                assert "le" not in labels
                s["count"] = value
            else:
                raise AssertionError(f"histogram {name} has a sample named {sname}")
        for key, s in series.items():
            what = f"{name}{dict(key)}"
            b = s["buckets"]
            assert b, f"{what}: no buckets"
            assert s["sum"] is not None and s["count"] is not None, f"{what}: _sum and _count needed"
            les = [le for le, _v, _raw in b]
            assert les == sorted(les) and len(set(les)) == len(les), f"{what}: le not increasing: {les}"
            assert b[-1][2] == "+Inf", f"{what}: the last bucket must be le=\"+Inf\": {b[-1]}"
            counts = [v for _le, v, _raw in b]
            assert all(x <= y for x, y in zip(counts, counts[1:])), (
                f"{what}: buckets not cumulative: {counts}")
            assert counts[-1] == s["count"], f"{what}: +Inf bucket {counts[-1]} != _count {s['count']}"
            assert s["sum"] >= 0, f"{what}: _sum {s['sum']}"

    # ---- lookups

    def type(self, name):
        return self.families[name]["type"]

    def get(self, name, **labels):
        """The value of the sample with exactly these labels (AssertionError if absent)."""
        key = (name, frozenset((k, str(v)) for k, v in labels.items()))
        assert key in self.samples, (
            f"no sample {name}{labels}; have: "
            + ", ".join(f"{n}{dict(l)}" for n, l in self.samples if n == name)[:2000])
        return self.samples[key]

    def value(self, name, default=None, **labels):
        key = (name, frozenset((k, str(v)) for k, v in labels.items()))
        return self.samples.get(key, default)

    def sum(self, name, **labels):
        """Sum of the samples of `name` whose labels include these."""
        want = {k: str(v) for k, v in labels.items()}
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and all(dict(ls).get(k) == x for k, x in want.items()))

    def series(self, name):
        return [(dict(ls), v) for (n, ls), v in self.samples.items() if n == name]


def scrape(lv):
    resp = admin_get(lv, "/metrics")
    assert resp.status == 200, f"GET /metrics: {resp!r}"
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "text/plain" and "version=0.0.4" in ctype, (
        f"/metrics Content-Type: {ctype!r}")
    return Metrics(resp.body.decode("utf-8"))


def metric(lv, name, **labels):
    return scrape(lv).get(name, **labels)


def wait_metric(lv, name, want, timeout=DEADLINE, **labels):
    """Wait until the metric sample equals `want` (or `want(value)` is true)."""
    last = [None]

    def ok():
        last[0] = scrape(lv).value(name, **labels)
        return want(last[0]) if callable(want) else last[0] == want

    try:
        return wait_for(ok, timeout, 0.05, f"{name}{labels} == {want}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last value {last[0]}") from None


# --------------------------------------------------------------------------
# configuration rewrites and reloads


def render_like(lv, text):
    """`text` (YAML) plus what the harness filled in for `lv` at start (listen,
    workers, access_log, admin), unless `text` sets them itself."""
    text = yaml_text(text)
    if not text.endswith("\n"):
        text += "\n"

    def has(key):
        return re.search(rf"^{key}\s*:", text, re.MULTILINE) is not None

    extra = ""
    if not has("listen"):
        extra += f"listen: {lv.host}:{lv.port}\n"
    if not has("workers"):
        extra += "workers: 1\n"
    if not has("access_log"):
        extra += (f"access_log:\n  path: {json.dumps(str(lv.access_log_path))}\n"
                  f"  format: {lv.access_log_format}\n")
    if not has("admin") and lv.admin_port:
        extra += f"admin:\n  listen: {lv.admin_host}:{lv.admin_port}\n"
    return text + extra


def write_config(lv, text, raw=False):
    """Replace lv's config file (atomically) for a reload; returns the text written."""
    out = yaml_text(text) if raw else render_like(lv, text)
    tmp = lv.config_path.with_suffix(".tmp")
    tmp.write_text(out)
    os.replace(tmp, lv.config_path)
    return out


def generation(lv):
    return int(metric(lv, "levee_config_generation"))


def reload_post(lv, headers=None):
    """POST /reload: (status, JSON body)."""
    resp = admin_post(lv, "/reload", headers)
    return resp.status, json_of(resp)


def sighup(lv, expect_generation, timeout=DEADLINE):
    """SIGHUP and wait until the admin port reports the new generation."""
    lv.signal(signal.SIGHUP)
    wait_metric(lv, "levee_config_generation", expect_generation, timeout)


def reload_via_sighup(lv, text):
    before = generation(lv)
    write_config(lv, text)
    sighup(lv, before + 1)
    return before + 1


def reload_via_post(lv, text):
    before = generation(lv)
    write_config(lv, text)
    status, body = reload_post(lv)
    assert status == 200 and body.get("ok") is True, f"POST /reload: {status} {body}"
    assert body["generation"] == before + 1, f"POST /reload answered {body}, was {before}"
    return body["generation"]


# --------------------------------------------------------------------------
# traffic


def backend_of(resp):
    return resp.headers.get("x-backend-id")


def send(lv, n, target="/r", client=None):
    """n GETs (on `client` if given, else a fresh connection each); every answer
    must be 200. Returns Counter of X-Backend-Id."""
    seen = Counter()
    for i in range(n):
        resp = client.get(f"{target}/{i}") if client else lv.get(f"{target}/{i}")
        assert resp.status == 200, resp
        seen[backend_of(resp)] += 1
    return seen


def wait_served_by(lv, backend_id, timeout=DEADLINE, target="/w"):
    """GETs until one is answered by backend_id; returns Counter of all answers."""
    seen = Counter()
    deadline = time.monotonic() + timeout
    while True:
        resp = lv.get(target)
        assert resp.status == 200, resp
        seen[backend_of(resp)] += 1
        if backend_of(resp) == backend_id:
            return seen
        assert time.monotonic() < deadline, (
            f"no answer from {backend_id} within {timeout}s; answers: {dict(seen)}")
        time.sleep(0.01)


class Background:
    """A function run on a thread; .result() joins and returns (or re-raises)."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        self.started = time.monotonic()
        self.elapsed = None

        def run():
            try:
                self._value = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed back to the test
                self._error = e
            self.elapsed = time.monotonic() - self.started

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=DEADLINE):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"background call still running after {timeout}s"
        if self._error is not None:
            raise self._error
        return self._value


# --------------------------------------------------------------------------
# the sockets a process listens on (from /proc)


def listening_ports(pid):
    """TCP ports process `pid` has listening sockets on (IPv4 and IPv6)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports
