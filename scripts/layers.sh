#!/bin/sh
# Layers that only point down (STYLE.md "Layout", DESIGN.md §3): the order
# of src/'s folders is written once, in LAYERS below, and every `#include
# "x/y.h"` of src/ is checked against it. Run by `make lint`.
#
#   scripts/layers.sh [--root DIR]     (DIR holds src/; default: this tree)
#
# A file may include the headers of its own folder and of LOWER layers. It
# fails, one line per finding, when
#   - a file includes a header of a higher layer
#       src/config/x.c: includes admin/y.h (layer admin above config)
#   - a file includes a header of another folder of the same rank
#       src/net/x.c: includes http/y.h (layer http beside net: same rank)
#   - two modules of one folder include each other's headers (a module is
#     x.c with x.h and x-i.h), or longer cycles of modules within a folder
#       src/limit/a.c: includes limit/b.h, and limit/b.c includes limit/a.h (cycle)
#   - a file or a header is in no layer (a new folder: add it to LAYERS)
# Inside a folder with an ORDER table (src/proxy/ for now) the modules are
# layered too: a module includes only modules of lower rank. Findings of an
# ORDER table fail like the others (PROXY_RULES=warn reports them without
# failing, for a rewrite in progress).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--root" ]; then
    root=$2
fi
PROXY_RULES=${PROXY_RULES:-fail}

# The layer order, lowest first: rank, then the folders of that rank. A
# path with a file name (admin/guard) puts that module on another rank
# than its folder. Rank "-" is a separate program: it may include its own
# folder and the folders listed after it, and nothing may include it.
LAYERS='
0 core
1 net http
2 upstream limit cache route admin/guard
3 config
4 proxy
5 admin
6 main
- demo core http
'
# Why these ranks:
#   core        buffers, clock, logs, stats, strbuf, list: depends on nothing
#   net, http   sockets, TLS, listeners; HTTP heads and parsing
#   upstream, limit, cache, route
#               policy modules: they own their *_cfg structs
#   admin/guard the admin port's request policy (pure, as the breaker is):
#               config checks admin.allowed_hosts with it
#   config      YAML -> the *_cfg structs, and the generation (config/gen)
#               that assembles config, backends, limiter and access log
#   proxy       the workers and the request path
#   admin       the admin listener: reads the proxy through its snapshots
#   main        the command line, signals, startup and shutdown
#   demo        the demo backend, a program of its own

# Module order inside one folder, highest first: folder, rank, modules.
# For src/proxy/ the chain of issue 12 (docs/proxy.md): the main thread's
# controller (proxy) over the worker (server), then client > h2conn (the
# HTTP/2 connection a client turns into) > exchange > the cache (cached) >
# the attempt loop, the rate-limit check and tunnels > the backend
# connection > the generation view > the access log and the body queue >
# the per-worker context, the flow numbers and the shared types > the
# counters.
ORDER='
proxy 12 proxy
proxy 11 server
proxy 10 client
proxy 9 h2conn
proxy 8 exchange
proxy 7 cached
proxy 6 attempt ratelimit tunnel
proxy 5 upconn
proxy 4 wgen
proxy 3 accesslog bodyq
proxy 2 wctx flow proxy-t
proxy 1 wstats
'

cd "$root"
[ -d src ] || {
    echo "layers: no src/ under $root" >&2
    exit 2
}

# One line per file ("F path") and per quoted include ("I path header").
scan() {
    find src -name '*.[ch]' | LC_ALL=C sort >"$tmp"
    sed 's/^/F /' "$tmp"
    # shellcheck disable=SC2046
    xargs grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' <"$tmp" |
        sed -n 's/^\([^:]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/I \1 \2/p'
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

scan | LC_ALL=C awk -v layers="$LAYERS" -v order="$ORDER" -v proxy_rules="$PROXY_RULES" '
function dirof(p,   i) { i = match(p, /\/[^\/]*$/); return i ? substr(p, 1, i - 1) : "" }
# A module is x.c with x.h, and x-i.h (its internal header, shared by its
# .c files) with them.
function stem(p) { sub(/\.[ch]$/, "", p); sub(/-i$/, "", p); return p }
# The layer unit of a path relative to src/ ("admin/guard.h" -> admin/guard,
# "admin/server.c" -> admin, "main.c" -> main); "" when in no layer.
function unit(rel,   s, d) {
    s = stem(rel)
    if (s in rank) return s
    d = dirof(rel)
    if (d != "" && (d in rank)) return d
    return ""
}
function report(msg, soft) {
    if (soft && proxy_rules == "warn") {
        print "warning: " msg
        nwarn++
    } else {
        print msg
        nfail++
    }
}
# Tarjan: strongly connected components of the module graph of one folder.
function strong(v,   i, w, k, comp, n, first, d) {
    idx[v] = lowl[v] = ++counter
    stack[++sp] = v
    onstack[v] = 1
    for (i = 1; i <= nsucc[v]; i++) {
        w = succ[v, i]
        if (!(w in idx)) {
            strong(w)
            if (lowl[w] < lowl[v]) lowl[v] = lowl[w]
        } else if (onstack[w] && idx[w] < lowl[v]) {
            lowl[v] = idx[w]
        }
    }
    if (lowl[v] != idx[v]) return
    n = 0
    do {
        w = stack[sp--]
        onstack[w] = 0
        comp[++n] = w
    } while (w != v)
    if (n > 2) {
        first = comp[n]
        k = first
        for (i = n - 1; i >= 1; i--) k = k " -> " comp[i]
        d = dirof(first)
        report("src/" modfile[first] ": in an include cycle of " n " modules: " k " -> " first,
               d in ordered)
    }
}
BEGIN {
    n = split(layers, lines, "\n")
    for (i = 1; i <= n; i++) {
        m = split(lines[i], f, " ")
        if (m < 2) continue
        if (f[1] == "-") {
            rank[f[2]] = "-"
            for (j = 3; j <= m; j++) extra[f[2], f[j]] = 1
            continue
        }
        for (j = 2; j <= m; j++) rank[f[j]] = f[1] + 0
    }
    n = split(order, lines, "\n")
    for (i = 1; i <= n; i++) {
        m = split(lines[i], f, " ")
        if (m < 3) continue
        ordered[f[1]] = 1
        for (j = 3; j <= m; j++) orank[f[1] "/" f[j]] = f[2] + 0
    }
}
$1 == "F" {
    files[$2] = 1
    next
}
$1 == "I" {
    nincl++
    incl_file[nincl] = $2
    incl_hdr[nincl] = $3
}
END {
    for (i = 1; i <= nincl; i++) {
        file = incl_file[i]
        hdr = incl_hdr[i]
        if (!(("src/" hdr) in files)) continue  # not one of ours
        rel = substr(file, 5)
        fu = unit(rel)
        hu = unit(hdr)
        if (fu == "" || hu == "") continue      # reported once per file below
        fd = dirof(rel)
        hd = dirof(hdr)
        # The module graph of each folder, for cycles.
        if (fd == hd && stem(rel) != stem(hdr)) {
            a = stem(rel)
            b = stem(hdr)
            if (!((a, b) in edge)) {
                edge[a, b] = file
                succ[a, ++nsucc[a]] = b
                mods[a] = 1
                mods[b] = 1
            }
            if (!(a in modfile) || file ~ /\.c$/) modfile[a] = rel
            if (fd in ordered) {
                ra = (a in orank) ? orank[a] : -1
                rb = (b in orank) ? orank[b] : -1
                if (ra < 0 || rb < 0) continue   # reported once per module below
                if (rb > ra)
                    report(file ": includes " hdr " (" b " is above " a " in the " fd " order)", 1)
                else if (rb == ra)
                    report(file ": includes " hdr " (" b " beside " a ": same rank in the " fd " order)", 1)
            }
        }
        if (fu == hu) continue
        rf = rank[fu]
        rh = rank[hu]
        if (rh == "-" && rf != "-") {
            report(file ": includes " hdr " (layer " hu " is a separate program)", 0)
        } else if (rf == "-") {
            if (!((fu, hu) in extra))
                report(file ": includes " hdr " (layer " hu " is not one " fu " may use)", 0)
        } else if (rh > rf) {
            report(file ": includes " hdr " (layer " hu " above " fu ")", 0)
        } else if (rh == rf) {
            report(file ": includes " hdr " (layer " hu " beside " fu ": same rank)", 0)
        }
    }
    for (file in files) {
        rel = substr(file, 5)
        if (unit(rel) == "") report(file ": in no layer (add its folder to LAYERS in scripts/layers.sh)", 0)
        d = dirof(rel)
        if ((d in ordered) && !(stem(rel) in orank) && !(stem(rel) in seen_mod)) {
            seen_mod[stem(rel)] = 1
            report(file ": in no rank of the " d " order (ORDER in scripts/layers.sh)", 1)
        }
    }
    # Cycles of two modules, then longer ones.
    for (k in edge) {
        split(k, ab, SUBSEP)
        d = dirof(ab[1])
        if (ab[1] < ab[2] && ((ab[2], ab[1]) in edge))
            report(edge[k] ": includes " ab[2] ".h, and " edge[ab[2], ab[1]] " includes " ab[1] ".h (cycle)",
                   d in ordered)
    }
    for (v in mods)
        if (!(v in idx)) strong(v)
    if (nwarn)
        printf "layers: %d finding(s) inside ordered folders reported, not failing (PROXY_RULES=%s)\n", nwarn, proxy_rules
    if (nfail) {
        printf "layers: %d violation(s) of the layer order (scripts/layers.sh)\n", nfail
        exit 1
    }
    print "layers: ok"
}
'
