/*
 * libFuzzer target: the rate-limit key (limit/key.c). The input is lines:
 * the peer address, the trusted networks (comma-separated), then one
 * X-Forwarded-For field value per line. Each value is copied into a heap
 * buffer of its exact length, without a NUL, so that ASan catches any read
 * past a field. The client address is checked against a plain reference walk
 * (fields joined by commas, split, read from the right) and must be the peer
 * as given or an address in its normal form. The whole input is also a
 * header value for lv_limit_key_header.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limit/key.h"

#define MAX_NETS 8
#define MAX_FIELDS 16

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

/* The next line of [*p, end): its start and length; *p moves past it. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
    if (*p > end) return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    *p = nl ? nl + 1 : end + 1;
    return true;
}

/* The peer's normal text, independently of key.c: inet_pton and inet_ntop,
 * an IPv4-mapped address printed as IPv4. Empty if it is not an address. */
static void ref_peer(const char *peer, char *out, size_t cap)
{
    uint8_t a[16];
    out[0] = '\0';
    if (inet_pton(AF_INET, peer, a) == 1) {
        inet_ntop(AF_INET, a, out, (socklen_t)cap);
    } else if (inet_pton(AF_INET6, peer, a) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0)
            inet_ntop(AF_INET, a + 12, out, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    }
}

/* lv_ip_normalize's grammar, written another way (on a C string, the port
 * split off first). The normal text into out, or "" if not an address. */
static void ref_entry(const char *s, size_t len, char *out, size_t cap)
{
    char t[80];
    out[0] = '\0';
    if (len == 0 || len >= sizeof(t)) return;
    memcpy(t, s, len);
    t[len] = '\0';
    if (strlen(t) != len) return;
    char *host = t, *port = NULL;
    bool v6_only = false;
    if (t[0] == '[') {
        char *rb = strrchr(t, ']');
        if (rb == NULL) return;
        *rb = '\0';
        host = t + 1;
        if (rb[1] != '\0') {
            if (rb[1] != ':') return;
            port = rb + 2;
        }
        v6_only = true;
    } else {
        char *c = strchr(t, ':');
        if (c && strchr(c + 1, ':') == NULL) {
            *c = '\0';
            port = c + 1;
        }
    }
    if (port) {
        size_t n = strlen(port);
        if (n < 1 || n > 5 || strspn(port, "0123456789") != n || strtoul(port, NULL, 10) > 65535)
            return;
    }
    uint8_t a[16];
    if (v6_only) {
        if (strchr(host, ':') == NULL || inet_pton(AF_INET6, host, a) != 1) return;
    } else if (port && inet_pton(AF_INET, host, a) != 1) {
        return;
    }
    ref_peer(host, out, cap);
}

/* The contract of lv_client_address, written the plain way. */
static void ref_client(const char *peer, const struct lv_xff_value *v, size_t nv,
                       const struct lv_cidr *nets, size_t nnets, char *out, size_t cap)
{
    char hop[LV_IP_TEXT_SIZE];
    ref_peer(peer, hop, sizeof(hop));
    if (hop[0] == '\0') {
        size_t n = strlen(peer) < cap - 1 ? strlen(peer) : cap - 1;
        memcpy(out, peer, n);
        out[n] = '\0';
        return;
    }
    if (!lv_cidr_contains(nets, nnets, hop, strlen(hop))) goto done;
    size_t total = 0;
    for (size_t i = 0; i < nv; i++)
        total += v[i].len + 1;
    char *joined = malloc(total + 1);
    CHECK(joined != NULL);
    size_t jl = 0;
    for (size_t i = 0; i < nv; i++) {
        if (i) joined[jl++] = ',';
        memcpy(joined + jl, v[i].p, v[i].len);
        jl += v[i].len;
    }
    /* every entry, left to right, then walked from the right */
    size_t nent = 1;
    for (size_t i = 0; i < jl; i++)
        nent += joined[i] == ',';
    size_t *starts = malloc(nent * sizeof(*starts)), *ends = malloc(nent * sizeof(*ends));
    CHECK(starts && ends);
    size_t k = 0, s = 0;
    for (size_t i = 0; i <= jl; i++) {
        if (i == jl || joined[i] == ',') {
            starts[k] = s, ends[k] = i, k++;
            s = i + 1;
        }
    }
    for (size_t e = nv ? k : 0; e-- > 0;) {
        size_t a = starts[e], b = ends[e];
        while (a < b && (joined[a] == ' ' || joined[a] == '\t'))
            a++;
        while (b > a && (joined[b - 1] == ' ' || joined[b - 1] == '\t'))
            b--;
        if (a == b) continue;
        char ip[LV_IP_TEXT_SIZE];
        if (lv_ip_normalize(joined + a, b - a, ip, sizeof(ip)) < 0) break;
        memcpy(hop, ip, sizeof(ip));
        if (!lv_cidr_contains(nets, nnets, ip, strlen(ip))) break;
    }
    free(starts);
    free(ends);
    free(joined);
done:
    memcpy(out, hop, strlen(hop) + 1);
}

static void check_header_key(const uint8_t *data, size_t size)
{
    if (size == 0) return;
    char k1[LV_LIMIT_KEY_LEN + 1], k2[LV_LIMIT_KEY_LEN + 1];
    size_t n1 = lv_limit_key_header((const char *)data, size, k1, sizeof(k1));
    size_t n2 = lv_limit_key_header((const char *)data, size, k2, sizeof(k2));
    CHECK(n1 > 0 && n1 <= LV_LIMIT_KEY_LEN && k1[n1] == '\0');
    CHECK(n1 == n2 && memcmp(k1, k2, n1) == 0);
    if (size <= LV_LIMIT_KEY_LEN - 2) {
        CHECK(n1 == size + 2 && memcmp(k1, "h:", 2) == 0 && memcmp(k1 + 2, data, size) == 0);
    } else {
        CHECK(n1 == 34 && memcmp(k1, "h#", 2) == 0);
        for (size_t i = 2; i < n1; i++)
            CHECK((k1[i] >= '0' && k1[i] <= '9') || (k1[i] >= 'a' && k1[i] <= 'f'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_header_key(data, size);

    const char *p = (const char *)data, *end = p + size, *line;
    size_t len;
    /* the peer, as the client connection holds it (char ip[48]) */
    char peer[48] = "";
    if (next_line(&p, end, &line, &len)) {
        if (len >= sizeof(peer)) len = sizeof(peer) - 1;
        memcpy(peer, line, len);
        peer[len] = '\0';
    }
    /* the trusted networks */
    struct lv_cidr nets[MAX_NETS];
    size_t nnets = 0;
    if (next_line(&p, end, &line, &len)) {
        const char *q = line, *qend = line + len;
        while (q <= qend && nnets < MAX_NETS) {
            const char *comma = memchr(q, ',', (size_t)(qend - q));
            size_t n = comma ? (size_t)(comma - q) : (size_t)(qend - q);
            char tmp[64];
            if (n < sizeof(tmp)) {
                memcpy(tmp, q, n);
                tmp[n] = '\0';
                if (lv_cidr_parse(tmp, &nets[nnets]) == 0) nnets++;
            }
            q = comma ? comma + 1 : qend + 1;
        }
    }
    /* the X-Forwarded-For fields, each in a buffer of its own */
    struct lv_xff_value v[MAX_FIELDS];
    size_t nv = 0;
    while (nv < MAX_FIELDS && next_line(&p, end, &line, &len)) {
        char *copy = malloc(len ? len : 1);
        CHECK(copy != NULL);
        memcpy(copy, line, len);
        v[nv].p = copy;
        v[nv].len = len;
        nv++;
        /* an entry alone: refused, or an address whose normal text is stable */
        char n1[LV_IP_TEXT_SIZE], n2[LV_IP_TEXT_SIZE];
        int l1 = lv_ip_normalize(copy, len, n1, sizeof(n1));
        CHECK(l1 < 0 ? n1[0] == '\0' : (size_t)l1 == strlen(n1));
        if (l1 >= 0) {
            CHECK(lv_ip_normalize(n1, (size_t)l1, n2, sizeof(n2)) == l1);
            CHECK(strcmp(n1, n2) == 0);
        }
        ref_entry(copy, len, n2, sizeof(n2));
        CHECK(strcmp(n1, n2) == 0);
    }

    char out[LV_IP_TEXT_SIZE + 1];
    memset(out, 0x5a, sizeof(out));
    struct lv_xff_array arr = {v, nv};
    size_t n = lv_client_address(peer, lv_xff_array_prev, &arr, nets, nnets, out, LV_IP_TEXT_SIZE);
    CHECK(n < LV_IP_TEXT_SIZE && out[n] == '\0' && strlen(out) == n);
    CHECK((unsigned char)out[LV_IP_TEXT_SIZE] == 0x5a); /* nothing past cap */
    if (!lv_cidr_contains(nets, nnets, peer, strlen(peer)))
        CHECK(arr.n == nv); /* an untrusted peer's X-Forwarded-For is not read */

    /* the peer as it is, or an address in its normal form */
    char again[LV_IP_TEXT_SIZE];
    if (strncmp(out, peer, LV_IP_TEXT_SIZE - 1) != 0) {
        CHECK(lv_ip_normalize(out, n, again, sizeof(again)) == (int)n);
        CHECK(strcmp(out, again) == 0);
    }
    char ref[LV_IP_TEXT_SIZE];
    ref_client(peer, v, nv, nets, nnets, ref, sizeof(ref));
    CHECK(strcmp(out, ref) == 0);

    for (size_t i = 0; i < nv; i++)
        free((void *)v[i].p);
    return 0;
}
