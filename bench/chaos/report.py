#!/usr/bin/python3
"""bench/chaos/report.py — the table of bench/chaos/run.sh, from its records.

Each record (one line, tab-separated) is one run: scenario, proxy label, the JSON file
load.py wrote, whether the proxy was still alive at the end (1/0), the requests the
three backends saw (health checks included), levee's hedges and retries ("-" for the
peers), and the events of the run.

    report.py RECORDS          the summary, the table, then the details of every run
    report.py --one RECORDS    one progress line for the last run

The summary is the issue's table: one row per scenario, one column per proxy, each cell
"ok % (POST ok %), p99", with the recovery after the restart for all_dead_then_back
(the first success / the failures stopping); the best ok % of a row is in bold.
"""

import json
import sys

COLUMNS = "%-19s %-21s %7s %7s %7s %7s %7s %7s %5s %5s %5s %9s %6s %6s  %s"


def read_records(path):
    out = []
    with open(path) as f:
        for line in f:
            (scenario, proxy, json_path, alive, backend_reqs, hedges, retries,
             events) = line.rstrip("\n").split("\t")
            with open(json_path) as j:
                data = json.load(j)
            out.append({
                "scenario": scenario,
                "proxy": proxy,
                "data": data,
                "alive": alive == "1",
                "backend_reqs": int(backend_reqs),
                "hedges": None if hedges == "-" else int(float(hedges)),
                "retries": None if retries == "-" else int(float(retries)),
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
        if r["scenario"] != "killed" and rec.get("first_ok_s") is not None:
            out.append("first success %.2f s %s" % (rec["first_ok_s"], what))
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


def post_ok(d):
    """Successful POSTs, % of the POSTs (None without POSTs)."""
    m = d.get("by_method", {}).get("POST")
    if not m or not m["requests"]:
        return None
    return 100.0 * (m["requests"] - m["failed"]) / m["requests"]


def extra_pct(r):
    """Hedges + retries levee sent, % of the client requests ("-" for the peers)."""
    n = r["data"]["counts"]["requests"]
    if r["hedges"] is None or r["retries"] is None or not n:
        return "-"
    return "%.1f" % (100.0 * (r["hedges"] + r["retries"]) / n)


def failed_split(d):
    bm = d.get("by_method", {})
    return "%d/%d" % (bm.get("GET", {}).get("failed", 0), bm.get("POST", {}).get("failed", 0))


def row(r):
    d = r["data"]
    c = d["counts"]
    la, lo = d["latency_all"], d["latency_ok"]
    n = c["requests"]
    amp = "%.2f" % (r["backend_reqs"] / n) if n and r["backend_reqs"] else "-"
    po = post_ok(d)
    return COLUMNS % (
        r["scenario"], r["proxy"], "%.2f" % d["success_pct"], "-" if po is None else "%.2f" % po,
        ms(la["p50_ms"]), ms(la["p99_ms"]), ms(la["max_ms"]), ms(lo["p99_ms"]), c["5xx"],
        c["timeouts"], c["conn_errors"] + c["other"], failed_split(d), amp, extra_pct(r),
        notes(r))


def header():
    return COLUMNS % ("scenario", "proxy", "ok %", "POST %", "p50 ms", "p99 ms", "max ms",
                      "ok p99", "5xx", "t/o", "conn", "fail G/P", "bk/req", "+req %", "notes")


def thousands(x):
    """A latency in ms for the summary: "8 ms", "1,001 ms", "0.9 ms"."""
    if x is None:
        return "-"
    return ("{:,.0f}" if x >= 10 else "{:.1f}").format(x) + " ms"


def seconds(x):
    return "-" if x is None else "%.1f s" % x


def cell(r):
    d = r["data"]
    po = post_ok(d)
    text = "%.2f%%" % d["success_pct"]
    if po is not None:
        text += " (POST %.2f)" % po
    text += ", p99 " + thousands(d["latency_all"]["p99_ms"])
    rec = d.get("recovery")
    if rec is not None and r["scenario"] != "killed":
        text += ", recovery %s / %s" % (seconds(rec.get("first_ok_s")), seconds(rec["seconds"]))
    if not r["alive"]:
        text += ", PROXY EXITED"
    return text


def summary(records):
    """The issue's table: scenarios down, proxies across (markdown)."""
    proxies, scenarios, by = [], [], {}
    for r in records:
        if r["proxy"] not in proxies:
            proxies.append(r["proxy"])
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
        by[(r["scenario"], r["proxy"])] = r
    lines = ["| scenario | " + " | ".join(proxies) + " |",
             "| --- | " + " | ".join("---" for _ in proxies) + " |"]
    for s in scenarios:
        runs = [by.get((s, p)) for p in proxies]
        best = max((r["data"]["success_pct"] for r in runs if r is not None), default=None)
        cells = []
        for r in runs:
            if r is None:
                cells.append("–")
                continue
            c = cell(r)
            if r["data"]["success_pct"] == best:
                c = "**%s**" % c
            cells.append(c)
        lines.append("| %s | %s |" % (s, " | ".join(cells)))
    return "\n".join(lines)


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
    if r["hedges"] is not None:
        lines.append("  levee sent %d hedges and %d retries" % (r["hedges"], r["retries"]))
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
    print(summary(records))
    print()
    print("Cells: ok % of all requests (ok % of the POSTs), p99 over all requests (a failure at"
          " its time to failure); all_dead_then_back: recovery = seconds from the restart to the"
          " first success / to the first whole second without a failure. Bold: the best ok %"
          " of the row.")
    print()
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
    print("POST %: ok % of the POSTs; fail G/P: failed GETs / failed POSTs; bk/req: requests"
          " the backends saw per client request (retries, hedges, health checks); +req %:"
          " levee's hedges + retries, % of the client requests.")
    print()
    print("details:")
    for r in records:
        print(details(r))


if __name__ == "__main__":
    main()
