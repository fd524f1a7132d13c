/*
 * The cache's own cost of a hit, in process: lookup, reply (fields, Age,
 * Cache-Status) and the body read, on the shared store, from 1 and from 2
 * threads (the shard locks under contention). No sockets: this is what the
 * cache adds to a request, not a proxy benchmark (bench/run.sh is that).
 *
 *   cc -O2 -D_GNU_SOURCE -Isrc -I/usr/share/include/llhttp -pthread bench/cache_hit.c \
 *      src/cache/*.c src/http/date.c src/http/check.c src/http/head.c src/core/buf.c \
 *      src/core/stats.c -o /tmp/cache_hit && /tmp/cache_hit
 */
#include <llhttp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"

#define NKEYS 1000
#ifndef OPS
#define OPS 2000000
#endif

static struct lv_cache_cfg cfg;
static struct lv_cache_store *store;
static const int64_t now = 1700000000000ll;

static char targets[NKEYS][32];
static struct lv_hfield req_f[4];
static char req_text[256];
static struct lv_fields req_fields;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add(struct lv_hfield *f, char *text, uint32_t *off, const char *n, const char *v)
{
    f->name = *off;
    f->name_len = (uint32_t)strlen(n);
    memcpy(text + *off, n, f->name_len);
    *off += f->name_len;
    f->value = *off;
    f->value_len = (uint32_t)strlen(v);
    memcpy(text + *off, v, f->value_len);
    *off += f->value_len;
    f->flags = 0;
}

static void prime(size_t body_len)
{
    static char body[16384];
    memset(body, 'x', sizeof(body));
    struct lv_hfield f[6];
    char text[512];
    uint32_t off = 0;
    add(&f[0], text, &off, "Date", "Tue, 14 Nov 2023 22:13:20 GMT");
    add(&f[1], text, &off, "Cache-Control", "public, max-age=3600");
    add(&f[2], text, &off, "Content-Type", "text/plain");
    add(&f[3], text, &off, "ETag", "\"abc\"");
    add(&f[4], text, &off, "Last-Modified", "Tue, 14 Nov 2023 20:00:00 GMT");
    struct lv_fields resp = {text, f, 5};
    for (int k = 0; k < NKEYS; k++) {
        char *target = targets[k];
        snprintf(target, sizeof(targets[k]), "/object/%d", k);
        struct lv_cache_req r = {HTTP_GET,        false, target,    strlen(target),
                                 "bench.example", 13,    req_fields};
        struct lv_cache_lookup l;
        lv_cache_lookup_init(&l);
        lv_cache_lookup(store, &cfg, &r, now, NULL, &l);
        struct lv_cache_writer w;
        enum lv_cache_nostore why;
        if (lv_cache_begin(store, &cfg, &l, &r, 200, &resp, now, now, &w, &why) != 0) abort();
        lv_cache_writer_append(&w, body, body_len);
        lv_cache_writer_finish(&w);
        lv_cache_lookup_dispose(store, &l, now);
    }
}

static void *hits(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    size_t sink = 0;
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    for (int i = 0; i < OPS; i++) {
        const char *target = targets[rand_r(&seed) % NKEYS];
        struct lv_cache_req r = {HTTP_GET,        false, target,    strlen(target),
                                 "bench.example", 13,    req_fields};
        lv_cache_lookup(store, &cfg, &r, now + 1000, NULL, &l);
        if (l.action != LV_CACHE_SERVE) abort();
        struct lv_cache_reply rp;
        lv_cache_reply_init(&rp, &cfg, &l, &r, l.entry, now + 1000);
        struct lv_field f;
        while (lv_cache_reply_field(&rp, &f))
            sink += f.value_len;
        struct lv_cache_cursor c;
        lv_cache_cursor_init(&c);
        const char *p;
        size_t len;
        while (lv_cache_entry_read(l.entry, &c, 65536, &p, &len) == LV_READ_DATA)
            sink += len;
        lv_cache_lookup_dispose(store, &l, now);
        lv_cache_lookup_init(&l);
    }
    return (void *)sink;
}

static void run(size_t body_len)
{
    store = lv_cache_store_create(256ull << 20, 8ull << 20);
    prime(body_len);
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        double t0 = seconds();
        for (int i = 0; i < threads; i++)
            pthread_create(&t[i], NULL, hits, (void *)(uintptr_t)(i + 1));
        for (int i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        double dt = seconds() - t0;
        printf("body %5zu B, %d thread%s: %6.0f ns per hit per thread, %5.2f M hits/s in all\n",
               body_len, threads, threads > 1 ? "s" : " ", dt * 1e9 / OPS,
               threads * OPS / dt / 1e6);
    }
    lv_cache_store_destroy(store);
}

int main(void)
{
    lv_cache_cfg_init(&cfg);
    cfg.enabled = true;
    uint32_t off = 0;
    add(&req_f[0], req_text, &off, "Host", "bench.example");
    add(&req_f[1], req_text, &off, "User-Agent", "wrk");
    add(&req_f[2], req_text, &off, "Accept", "*/*");
    req_fields = (struct lv_fields){req_text, req_f, 3};
    run(100);
    run(16384);
    lv_cache_cfg_dispose(&cfg);
    return 0;
}
