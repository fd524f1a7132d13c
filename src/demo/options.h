/* The demo backend's command line: the option set, its --help text, and the unit parsers
 * (durations, sizes) that the endpoints reuse for their path arguments. */
#ifndef LV_DEMO_OPTIONS_H
#define LV_DEMO_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct lv_demo_options {
    const char *host;
    int port;       /* 0 asks the kernel for a free port */
    const char *id; /* NULL until lv_demo_options_parse; "backend-PORT" unless --id */
    uint64_t latency_ms, jitter_ms;
    double error_rate, hang_rate, reset_rate;
    uint64_t hang_for_ms; /* a hung request is answered after this; 0: never */
    int error_status;
    int chaos_health;
    uint64_t body_size;
    int workers;
    uint64_t seed;
    int seed_given;
    int quiet;
};

/* Fills o from argv. Returns 0 to run, 1 when --help or --version was printed (exit 0), or a
 * negative code after printing the problem to stderr (exit 2). o->id stays NULL without --id:
 * the caller derives it from the bound port. */
int lv_demo_options_parse(struct lv_demo_options *o, int argc, char **argv);

/* "250ms", "1.5s", "2m", "3" (seconds) -> milliseconds. s need not be NUL-terminated.
 * Returns 0 or UV_EINVAL. */
int lv_demo_parse_duration(const char *s, size_t n, uint64_t *ms);
/* "100", "16KiB", "1MiB", "1GiB", "2KB" (1000s) -> bytes. Returns 0 or UV_EINVAL. */
int lv_demo_parse_size(const char *s, size_t n, uint64_t *bytes);

#endif
