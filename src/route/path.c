/*
 * Path normalization and host extraction for routing (route/path.h): the
 * spelling a route compares with, computed in one pass over the target.
 */
#include "route/path.h"

#include <stdbool.h>
#include <string.h>

void lv_target_split(const char *t, size_t n, size_t *path_len, const char **query,
                     size_t *query_len)
{
    const char *q = memchr(t, '?', n);
    if (q == NULL) {
        *path_len = n;
        *query = NULL;
        *query_len = 0;
        return;
    }
    *path_len = (size_t)(q - t);
    *query = q + 1;
    *query_len = n - *path_len - 1;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* RFC 3986 §2.3: decoding these never changes what a URI means. */
static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

ssize_t lv_path_normalize(const char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n == 1 && p[0] == '*') {
        out[0] = '*';
        return 1;
    }
    if (n == 0 || p[0] != '/') return -1;
    /* out holds the path so far; out[seg..o) is the segment being read. It
     * always starts with '/', and every completed segment ends with one, so
     * resolving ".." only has to go back to the '/' before the previous
     * segment. */
    size_t o = 1, seg = 1;
    out[0] = '/';
    for (size_t i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = o - seg;
            if (len == 1 && out[seg] == '.') {
                o = seg;
            } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
                o = seg;
                if (o > 1) {
                    o--;
                    while (out[o - 1] != '/')
                        o--;
                }
                seg = o;
            } else if (len > 0 && i < n) {
                out[o++] = '/';
                seg = o;
            }
            continue; /* an empty segment ("//") adds nothing */
        }
        unsigned char c = (unsigned char)p[i];
        if (c != '%') {
            out[o++] = (char)c;
            continue;
        }
        if (i + 2 >= n) return -1;
        int hi = hexval((unsigned char)p[i + 1]), lo = hexval((unsigned char)p[i + 2]);
        if (hi < 0 || lo < 0) return -1;
        unsigned char b = (unsigned char)(hi * 16 + lo);
        if (unreserved(b)) {
            out[o++] = (char)b;
        } else {
            out[o++] = '%';
            out[o++] = hex[hi];
            out[o++] = hex[lo];
        }
        i += 2;
    }
    return (ssize_t)o;
}

ssize_t lv_route_host(const char *h, size_t n, char *out)
{
    if (h == NULL || n == 0) return -1;
    size_t end = n;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (rb == NULL) return -1;
        end = (size_t)(rb - h) + 1;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon) end = (size_t)(colon - h);
        if (end > 0 && h[end - 1] == '.') end--;
    }
    if (end == 0 || end > LV_ROUTE_HOST_MAX) return -1;
    for (size_t i = 0; i < end; i++) {
        char c = h[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return (ssize_t)end;
}
