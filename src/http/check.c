/*
 * Head checks: framing, request target, Host. Each rule says which reading
 * of a message it rules out; the headers give the RFC text.
 */
#include "http/check.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <strings.h>

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 reg-name characters, except ",": "a,b" is what several Host
 * values folded into one look like, and which of them a backend takes is
 * anybody's guess. No DNS name has a comma. */
static bool is_reg_name_char(unsigned char c)
{
    if (is_alpha(c) || is_digit(c)) return true;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~': /* unreserved */
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ';':
    case '=': return true; /* sub-delims but "," */
    default: return false;
    }
}

/* "[" IPv6address "]" at v[0..n): the whole of it. */
static bool ipv6_literal(const char *v, size_t n)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n < 3 || v[0] != '[' || v[n - 1] != ']' || n - 2 >= sizeof(tmp)) return false;
    memcpy(tmp, v + 1, n - 2);
    tmp[n - 2] = '\0';
    struct in6_addr a;
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

bool lv_check_authority(const char *v, size_t n)
{
    const unsigned char *u = (const unsigned char *)v;
    size_t i = 0;
    if (n > 0 && u[0] == '[') {
        while (i < n && u[i] != ']')
            i++;
        if (i == n || !ipv6_literal(v, i + 1)) return false;
        i++;
    } else {
        while (i < n && u[i] != ':') {
            if (u[i] == '%') {
                if (n - i < 3 || !is_hex(u[i + 1]) || !is_hex(u[i + 2])) return false;
                i += 3;
                continue;
            }
            if (!is_reg_name_char(u[i])) return false;
            i++;
        }
        if (i == 0) return false; /* no host at all */
    }
    if (i == n) return true;
    if (u[i] != ':') return false;
    size_t digits = n - i - 1;
    if (digits == 0 || digits > 5) return false;
    unsigned port = 0;
    for (size_t k = i + 1; k < n; k++) {
        if (!is_digit(u[k])) return false;
        port = port * 10 + (unsigned)(u[k] - '0');
    }
    return port <= 65535;
}

size_t lv_target_absolute(const char *t, size_t n, const char **auth, size_t *auth_len)
{
    size_t skip = 0;
    if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    if (skip == 0) return 0;
    size_t a = skip;
    while (a < n && t[a] != '/' && t[a] != '?')
        a++;
    *auth = t + skip;
    *auth_len = a - skip;
    return a;
}

bool lv_check_target(uint8_t method, const char *t, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        /* A backend (or a log reader) may cut, decode or re-encode such a
         * byte in its own way; RFC 3986 has none of them in a URI. */
        if (c <= 0x20 || c >= 0x7f) return false;
    }
    /* RFC 9112 §3.2.4: the asterisk form is for a server-wide OPTIONS only. */
    if (n == 1 && t[0] == '*') return method == HTTP_OPTIONS;
    if (t[0] == '/') return true;
    const char *auth = NULL;
    size_t alen = 0;
    if (lv_target_absolute(t, n, &auth, &alen) == 0) return false;
    return lv_check_authority(auth, alen);
}

/* Exactly one transfer coding across every Transfer-Encoding field, and it
 * is chunked: the only coding levee decodes and frames again. */
static bool transfer_encoding_is_chunked(const struct lv_head *h)
{
    int codings = 0;
    bool chunked = false;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        if (!LV_HFIELD_IS(h, f, "transfer-encoding")) continue;
        const char *v = lv_head_str(h, f->value);
        size_t k = 0, len = f->value_len;
        while (k < len) {
            while (k < len && (v[k] == ' ' || v[k] == '\t' || v[k] == ','))
                k++;
            size_t start = k;
            while (k < len && v[k] != ',')
                k++;
            size_t end = k;
            while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
                end--;
            if (end == start) continue;
            codings++;
            chunked = end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
        }
    }
    return codings == 1 && chunked;
}

/* The framing rules both directions share (RFC 9112 §6.1, §6.3). */
static bool framing_ok(const struct lv_head *h)
{
    if (LV_HEAD_FIND(h, "transfer-encoding") == NULL) return true;
    /* An HTTP/1.0 recipient cannot know chunked; a length beside a coding
     * is the classic smuggling pair, even when the coding is empty and
     * llhttp would go by the length. */
    if (h->http_major == 1 && h->http_minor == 0) return false;
    if (LV_HEAD_FIND(h, "content-length") != NULL) return false;
    return transfer_encoding_is_chunked(h);
}

enum lv_fail_kind lv_check_request(const struct lv_head *h)
{
    if (!framing_ok(h)) return LV_FAIL_BAD_FRAMING;
    if (!lv_check_target(h->method, lv_head_str(h, h->target), h->target_len))
        return LV_FAIL_BAD_REQUEST;
    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before; its
     * value goes to the backend and into X-Forwarded-Host, so it must be
     * one authority and nothing else. */
    int hosts = 0;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        if (!LV_HFIELD_IS(h, f, "host")) continue;
        if (++hosts > 1) return LV_FAIL_BAD_REQUEST;
        if (!lv_check_authority(lv_head_str(h, f->value), f->value_len)) return LV_FAIL_BAD_REQUEST;
    }
    if (hosts == 0 && !(h->http_major == 1 && h->http_minor == 0)) return LV_FAIL_BAD_REQUEST;
    return LV_FAIL_NONE;
}

enum lv_fail_kind lv_check_response(const struct lv_head *h)
{
    if (h->http_major != 1) return LV_FAIL_BAD_RESPONSE;
    if (!framing_ok(h)) return LV_FAIL_BAD_RESPONSE;
    return LV_FAIL_NONE;
}
