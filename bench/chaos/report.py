#!/usr/bin/python3
"""bench/chaos/report.py — the table of bench/chaos/run.sh, from its records.

Each record (one line, tab-separated) is one run: scenario, proxy label, the JSON file
load.py wrote, whether the proxy was still alive at the end (1/0), the requests the
three backends saw (health checks included), and the events of the run.

    report.py RECORDS          the table, then the details of every run
    report.py --one RECORDS    one progress line for the last run
"""

import json
import sys

COLUMNS = "%-19s %-17s %7s %7s %7s %7s %7s %5s %5s %5s %9s %6s  %s"


def read_records(path):
    out = []
    with open(path) as f:
        for line in f:
            scenario, proxy, json_path, alive, backend_reqs, events = line.rstrip("\n").split("\t")
            with open(json_path) as j:
                data = json.load(j)
            out.append({
                "scenario": scenario,
                "proxy": proxy,
                "data": data,
                "alive": alive == "1",
                "backend_reqs": int(backend_reqs),
                "events": "" if events == "-" else events.strip().rstrip(";"),
            })
    return out


def ms(x):
    if x is None:
        return "-"
    if x >= 1000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    return "%.2f" % x


def notes(r):
    d = r["data"]
    out = []
    if not r["alive"]:
        out.append("PROXY EXITED")
    rec = d.get("recovery")
    if rec is not None:
        what = "after the kill" if r["scenario"] == "killed" else "after the restart"
        if rec["seconds"] is None:
            out.append("never 1 s without failure %s" % what)
        else:
            out.append("failures stop %.2f s %s" % (rec["seconds"], what))
    tail = d.get("tail")
    if tail is not None and tail["success_pct"] is not None:
        out.append("last third %.2f %%" % tail["success_pct"])
    if d.get("resent"):
        out.append("%d GETs re-sent by the client" % d["resent"])
    g = d["generator"]
    if g["behind"]:
        out.append("generator behind: %.1f/s, start lag p99 %.1f ms"
                   % (g["achieved_start_rate"], g["lag_p99_ms"]))
    return "; ".join(out)


def failed_split(d):
    bm = d.get("by_method", {})
    return "%d/%d" % (bm.get("GET", {}).get("failed", 0), bm.get("POST", {}).get("failed", 0))


def row(r):
    d = r["data"]
    c = d["counts"]
    la, lo = d["latency_all"], d["latency_ok"]
    n = c["requests"]
    amp = "%.2f" % (r["backend_reqs"] / n) if n and r["backend_reqs"] else "-"
    return COLUMNS % (
        r["scenario"], r["proxy"], "%.2f" % d["success_pct"], ms(la["p50_ms"]), ms(la["p99_ms"]),
        ms(la["max_ms"]), ms(lo["p99_ms"]), c["5xx"], c["timeouts"], c["conn_errors"] + c["other"],
        failed_split(d), amp, notes(r))


def header():
    return COLUMNS % ("scenario", "proxy", "ok %", "p50 ms", "p99 ms", "max ms", "ok p99",
                      "5xx", "t/o", "conn", "fail G/P", "bk/req", "notes")


def details(r):
    d = r["data"]
    c = d["counts"]
    la, lo, g = d["latency_all"], d["latency_ok"], d["generator"]
    status = " ".join("%s:%d" % kv for kv in d["status"].items()) or "-"
    kinds = " ".join("%s:%d" % kv for kv in d["conn_error_kinds"].items()) or "-"
    bm = d.get("by_method", {})
    methods = ", ".join("%s %d failed of %d" % (k, v["failed"], v["requests"])
                        for k, v in sorted(bm.items()))
    per_sec = " ".join(
        ("%.0f" % (100.0 * ok / req)) if req else "-" for req, ok in d["timeline"])
    lines = [
        "%s / %s" % (r["scenario"], r["proxy"]),
        "  requests %d: ok %d, 4xx %d, 5xx %d, timeouts %d, connection errors %d;"
        " status %s; connection errors %s; GETs re-sent on a new connection %d"
        % (c["requests"], c["ok"], c["4xx"], c["5xx"], c["timeouts"],
           c["conn_errors"] + c["other"], status, kinds, d.get("resent", 0)),
        "  by method: %s" % (methods or "-"),
        "  latency ms, all requests: p50 %s p90 %s p99 %s max %s; successes only: p50 %s"
        " p90 %s p99 %s max %s"
        % (ms(la["p50_ms"]), ms(la["p90_ms"]), ms(la["p99_ms"]), ms(la["max_ms"]),
           ms(lo["p50_ms"]), ms(lo["p90_ms"]), ms(lo["p99_ms"]), ms(lo["max_ms"])),
        "  generator: %.2f starts/s, start lag p50 %.2f p99 %.2f max %.2f ms%s;"
        " %d client connections opened (peak %d open)"
        % (g["achieved_start_rate"], g["lag_p50_ms"], g["lag_p99_ms"], g["lag_max_ms"],
           " (BEHIND)" if g["behind"] else "", g["connections_opened"],
           g["peak_open_connections"]),
        "  backends saw %d requests (health checks included) = %s per client request"
        % (r["backend_reqs"], ("%.2f" % (r["backend_reqs"] / c["requests"]))
           if c["requests"] else "-"),
    ]
    if r["events"]:
        lines.append("  events (from the first start): %s" % r["events"])
    lines.append("  ok %% per second: %s" % per_sec)
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--one":
        records = read_records(args[1])
        if records:
            r = records[-1]
            print("  " + row(r).rstrip())
        return
    records = read_records(args[0])
    print(header().rstrip())
    last = None
    for r in records:
        if last is not None and r["scenario"] != last:
            print()
        last = r["scenario"]
        print(row(r).rstrip())
    print()
    print("ok %: 2xx/3xx answers of all requests started; p50/p99/max ms: over all requests,"
          " a failure counted at its time to failure (a timeout at the client timeout);")
    print("ok p99: p99 of the successes only; 5xx: 5xx answers; t/o: no answer within the"
          " client timeout; conn: connection refused/reset/closed without an answer;")
    print("fail G/P: failed GETs / failed POSTs; bk/req: requests the backends saw per client"
          " request (retries, hedges, health checks).")
    print()
    print("details:")
    for r in records:
        print(details(r))


if __name__ == "__main__":
    main()
