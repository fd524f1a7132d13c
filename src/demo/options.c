/* Command-line parsing for the demo backend: every flag, its validation and the --help text
 * live here, so the help can never drift from what is accepted. */
#include "demo/options.h"
#include "core/version.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char usage[] =
    "usage: levee-demo-backend --port N [options]\n"
    "\n"
    "A fast HTTP/1.1 origin server for levee's demo, benchmark and tests.\n"
    "\n"
    "options:\n"
    "  --port N          port to listen on (required; 0 = any free port)\n"
    "  --host ADDR       address to bind, IPv4 or IPv6 (default 127.0.0.1)\n"
    "  --id NAME         sent as X-Backend-Id on every response (default backend-PORT)\n"
    "  --latency DUR     wait DUR before answering each request (default 0)\n"
    "  --jitter DUR      add a random 0..DUR to each wait (default 0)\n"
    "  --error-rate R    fraction of requests answered with --error-status (default 0)\n"
    "  --error-status N  status of injected errors, 200..599 (default 503)\n"
    "  --hang-rate R     fraction of requests never answered; the connection stays open\n"
    "  --hang-for DUR    answer a hung request after DUR after all (default: never)\n"
    "  --reset-rate R    fraction of requests answered by a TCP reset (RST)\n"
    "  --chaos-health    apply latency and the rates to /health too (default: /health is\n"
    "                    always answered at once; /stats always is)\n"
    "  --body-size N     size of the default body (default 100; units B KiB MiB GiB KB MB GB)\n"
    "  --workers N       threads, each with its own loop and SO_REUSEPORT listener (default 1)\n"
    "  --seed N          seed of the random choices, for reproducible chaos (default: time)\n"
    "  --quiet           print nothing but the startup line and errors\n"
    "  --help, --version\n"
    "\n"
    "DUR is a number with unit ms, s, m or h; a bare number means seconds (\"250ms\", \"1.5\").\n"
    "R is 0..1. Each request draws one random number: below reset-rate it is reset, below\n"
    "reset+hang it hangs, below reset+hang+error it gets the error; the rates must sum to <= 1.\n"
    "Each worker has its own random sequence, seeded from --seed and its index.\n"
    "\n"
    "endpoints (query strings are ignored for routing; HEAD gets headers only):\n"
    "  /health           200 \"ok\\n\"\n"
    "  /echo[/...]       200 JSON: method, path (request target), version, headers (in order\n"
    "                    received), body_length, body_fnv1a64, backend, connection_requests\n"
    "  /upload           reads any body without buffering it, answers like /echo\n"
    "  /stats            JSON: id, connections_accepted, connections_open, requests (excluding\n"
    "                    /stats itself), summed over workers; never delayed nor failed\n"
    "  /status/NNN       status NNN (200..599), short body (none for 204 and 304)\n"
    "  /delay/DUR        waits DUR (on top of --latency) then answers 200\n"
    "  /bytes/N          N bytes, streamed in 64 KiB writes with backpressure (units allowed)\n"
    "  /chunked/N        N bytes in chunked encoding, chunks of 16 KiB or ?chunk=SIZE\n"
    "  /close            200 with Connection: close, then closes\n"
    "  anything else     200 text/plain, --body-size bytes\n"
    "Generated bodies are 'x' bytes ending in '\\n'. Malformed requests get 400 (431 for heads\n"
    "over 64 KiB) and the connection is closed. SIGTERM or SIGINT exits 0 at once.\n"
    "The startup line \"levee-demo-backend ID listening on HOST:PORT\" goes to stdout.\n";

int lv_demo_parse_duration(const char *s, size_t n, uint64_t *ms)
{
    char tmp[32];
    size_t i = 0;
    if (n == 0 || n >= sizeof(tmp) || s[0] < '0' || s[0] > '9') return UV_EINVAL;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
        i++;
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (*end != '\0') return UV_EINVAL;
    const char *unit = s + i;
    size_t ulen = n - i;
    double mult;
    if (ulen == 0 || (ulen == 1 && unit[0] == 's'))
        mult = 1e3;
    else if (ulen == 2 && memcmp(unit, "ms", 2) == 0)
        mult = 1;
    else if (ulen == 1 && unit[0] == 'm')
        mult = 60e3;
    else if (ulen == 1 && unit[0] == 'h')
        mult = 3600e3;
    else
        return UV_EINVAL;
    v *= mult;
    if (!(v <= 1e12)) return UV_EINVAL; /* about 31 years: enough, and no overflow */
    *ms = (uint64_t)(v + 0.5);
    return 0;
}

int lv_demo_parse_size(const char *s, size_t n, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},        {"B", 1},         {"K", 1 << 10},     {"k", 1 << 10},     {"KiB", 1 << 10},
        {"KB", 1000},   {"kB", 1000},     {"M", 1 << 20},     {"MiB", 1 << 20},   {"MB", 1000000},
        {"G", 1 << 30}, {"GiB", 1 << 30}, {"GB", 1000000000}, {"TiB", 1ULL << 40}};
    uint64_t v = 0;
    size_t i = 0;
    if (n == 0 || s[0] < '0' || s[0] > '9') return UV_EINVAL;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_C(1) << 50)) return UV_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strlen(units[u].suffix) == n - i && memcmp(units[u].suffix, s + i, n - i) == 0) {
            if (v > (UINT64_C(1) << 60) / units[u].mult) return UV_EINVAL;
            *bytes = v * units[u].mult;
            return 0;
        }
    }
    return UV_EINVAL;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9') return UV_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v > max) return UV_EINVAL;
    *out = v;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    if ((s[0] < '0' || s[0] > '9') && s[0] != '.') return UV_EINVAL;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v >= 0 && v <= 1)) return UV_EINVAL;
    *out = v;
    return 0;
}

/* Checks an --id: it becomes a header value, so no control characters. */
static int check_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200) return UV_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return UV_EINVAL;
    return 0;
}

/* Every flag but --help and --version: how its value is read and where it is stored. */
enum kind { FLAG, INT, SEED, TEXT, ID, DURATION, RATE, SIZE };
#define AT(field) offsetof(struct lv_demo_options, field)
#define DUR "a duration such as 250ms, 2s, 1m or 1.5"
#define FRACTION "a number from 0 to 1"
static const struct flag {
    const char *name;
    enum kind kind;
    size_t at;
    int min, max; /* for INT */
    const char *allowed;
} flags[] = {
    {"--port", INT, AT(port), 0, 65535, "0..65535"},
    {"--host", TEXT, AT(host)},
    {"--id", ID, AT(id), 0, 0, "1..200 printable characters"},
    {"--latency", DURATION, AT(latency_ms), 0, 0, DUR},
    {"--jitter", DURATION, AT(jitter_ms), 0, 0, DUR},
    {"--error-rate", RATE, AT(error_rate), 0, 0, FRACTION},
    {"--error-status", INT, AT(error_status), 200, 599, "200..599"},
    {"--hang-rate", RATE, AT(hang_rate), 0, 0, FRACTION},
    {"--hang-for", DURATION, AT(hang_for_ms), 0, 0, DUR},
    {"--reset-rate", RATE, AT(reset_rate), 0, 0, FRACTION},
    {"--chaos-health", FLAG, AT(chaos_health)},
    {"--body-size", SIZE, AT(body_size), 0, 0, "bytes; units B KiB MiB GiB KB MB GB"},
    {"--workers", INT, AT(workers), 1, 256, "1..256"},
    {"--seed", SEED, AT(seed), 0, 0, "an unsigned integer"},
    {"--quiet", FLAG, AT(quiet)},
};

static int fail(const char *name, const char *what)
{
    fprintf(stderr, "levee-demo-backend: %s: %s (see --help)\n", name, what);
    return UV_EINVAL;
}

int lv_demo_options_parse(struct lv_demo_options *o, int argc, char **argv)
{
    *o = (struct lv_demo_options){
        .host = "127.0.0.1", .port = -1, .error_status = 503, .body_size = 100, .workers = 1};
    for (int i = 1; i < argc; i++) {
        char name[32];
        const char *eq = strchr(argv[i], '=');
        snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - argv[i]) : 31, argv[i]);
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strcmp(name, "--version") == 0) {
            printf("levee-demo-backend %s (%s)\n", lv_version, lv_git_rev);
            return 1;
        }
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && f == NULL; k++)
            if (strcmp(flags[k].name, name) == 0) f = &flags[k];
        if (f == NULL) return fail(name, "unknown option");
        char *field = (char *)o + f->at;
        if (f->kind == FLAG) {
            if (eq) return fail(name, "takes no value");
            *(int *)field = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : argv[++i]; /* argv[argc] is NULL */
        if (v == NULL) return fail(name, "missing value");
        uint64_t u = 0;
        int bad = 0;
        switch (f->kind) {
        case INT:
            bad = parse_uint(v, (uint64_t)f->max, &u) || u < (uint64_t)f->min;
            *(int *)field = (int)u;
            break;
        case SEED:
            bad = parse_uint(v, UINT64_MAX, &o->seed);
            o->seed_given = 1;
            break;
        case ID: bad = check_id(v); /* fall through */
        case TEXT: *(const char **)field = v; break;
        case DURATION: bad = lv_demo_parse_duration(v, strlen(v), (uint64_t *)field); break;
        case RATE: bad = parse_rate(v, (double *)field); break;
        case SIZE: bad = lv_demo_parse_size(v, strlen(v), (uint64_t *)field); break;
        case FLAG: break;
        }
        if (bad) {
            fprintf(stderr, "levee-demo-backend: %s: invalid value \"%s\" (%s)\n", name, v,
                    f->allowed);
            return UV_EINVAL;
        }
    }
    if (o->port < 0) return fail("--port", "required");
    if (o->error_rate + o->hang_rate + o->reset_rate > 1 + 1e-9)
        return fail("--reset-rate + --hang-rate + --error-rate", "must be <= 1");
    return 0;
}
