/*
 * Head serialization. Fields keep their order and their spelling; only
 * hop-by-hop and dropped fields are left out, and the fields levee owns
 * (X-Forwarded-*, X-Real-IP, framing, Connection) are written once at the end.
 */
#include "http/rewrite.h"

#include <assert.h>
#include <inttypes.h>
#include <llhttp.h>
#include <uv.h>
#include <stdio.h>

#include "core/fmt.h"
#include "http/check.h"
#include "http/status.h"

struct out {
    struct lv_buf *b;
    int err;
};

static void put(struct out *o, const char *p, size_t n)
{
    if (o->err == 0 && lv_buf_append(o->b, p, n) != 0) o->err = UV_ENOBUFS;
}

#define PUT_LIT(o, lit) put((o), lit, sizeof(lit) - 1)

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_field(struct out *o, const struct lv_head *h, const struct lv_hfield *f)
{
    put(o, lv_head_str(h, f->name), f->name_len);
    PUT_LIT(o, ": ");
    put(o, lv_head_str(h, f->value), f->value_len);
    PUT_LIT(o, "\r\n");
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[LV_FMT_U64_MAX];
    put(o, tmp, lv_fmt_u64(tmp, v));
}

/* Fields levee writes itself on the request side. */
static bool owned_request_field(const struct lv_head *h, const struct lv_hfield *f)
{
    return LV_HFIELD_IS(h, f, "x-forwarded-for") || LV_HFIELD_IS(h, f, "x-forwarded-proto") ||
           LV_HFIELD_IS(h, f, "x-forwarded-host") || LV_HFIELD_IS(h, f, "x-real-ip") ||
           LV_HFIELD_IS(h, f, "content-length") || LV_HFIELD_IS(h, f, "expect");
}

size_t lv_rewrite_request_size(const struct lv_head *req, const struct lv_fwd_info *fwd)
{
    size_t n = req->buf ? req->buf->len : 0;
    /* The Host value (or the target's authority) is written twice: as Host
     * and as X-Forwarded-Host; the target's length bounds the authority. */
    const struct lv_hfield *host = LV_HEAD_FIND(req, "host");
    n += host ? host->value_len : 0;
    n += req->target_len;
    n += (size_t)req->nfields * 4 + 512 + strlen(fwd->client_ip) * 2;
    n += strlen(fwd->backend_authority);
    if (fwd->extra) n += strlen(fwd->extra);
    if (fwd->target) n += fwd->target_len;
    if (fwd->host) n += strlen(fwd->host);
    return n;
}

int lv_rewrite_request(const struct lv_head *req, const struct lv_fwd_info *fwd, struct lv_buf *out)
{
    struct out o = {out, 0};
    const char *target = lv_head_str(req, req->target);
    size_t tlen = req->target_len;
    const char *host = NULL;
    size_t host_len = 0;

    assert(fwd->framing != LV_FRAME_CLOSE); /* a request body is never close-delimited */
    /* RFC 9112 §3.2.2: the authority in an absolute-form target replaces
     * Host; the origin form starts where the authority ends. */
    size_t skip = lv_target_absolute(target, tlen, &host, &host_len);
    target += skip;
    tlen -= skip;

    put_str(&o, llhttp_method_name((llhttp_method_t)req->method));
    PUT_LIT(&o, " ");
    /* "http://h?q" has an empty path: the origin form is "/?q". */
    if (fwd->target) {
        put(&o, fwd->target, fwd->target_len);
    } else {
        if (tlen == 0 || (skip && target[0] != '/')) PUT_LIT(&o, "/");
        put(&o, target, tlen);
    }
    PUT_LIT(&o, " HTTP/1.1\r\n");

    const struct lv_hfield *host_f = NULL;
    bool have_xff = false;
    for (uint32_t i = 0; i < req->nfields; i++) {
        const struct lv_hfield *f = &req->fields[i];
        if (LV_HFIELD_IS(req, f, "host")) {
            if (host_f == NULL) host_f = f;
            if (host || fwd->host) continue;
        }
        if (f->flags & (LV_HF_HOP | LV_HF_DROP)) continue;
        if (owned_request_field(req, f)) {
            if (LV_HFIELD_IS(req, f, "x-forwarded-for")) have_xff = true;
            continue;
        }
        put_field(&o, req, f);
    }
    if (fwd->host) {
        PUT_LIT(&o, "Host: ");
        put_str(&o, fwd->host);
        PUT_LIT(&o, "\r\n");
    } else if (host) {
        PUT_LIT(&o, "Host: ");
        put(&o, host, host_len);
        PUT_LIT(&o, "\r\n");
    } else if (host_f == NULL) {
        PUT_LIT(&o, "Host: ");
        put_str(&o, fwd->backend_authority);
        PUT_LIT(&o, "\r\n");
    }

    /* X-Forwarded-For: every value the client sent, in order, then the peer. */
    PUT_LIT(&o, "X-Forwarded-For: ");
    if (have_xff) {
        for (uint32_t i = 0; i < req->nfields; i++) {
            const struct lv_hfield *f = &req->fields[i];
            if (!LV_HFIELD_IS(req, f, "x-forwarded-for") || f->value_len == 0) continue;
            put(&o, lv_head_str(req, f->value), f->value_len);
            PUT_LIT(&o, ", ");
        }
    }
    put_str(&o, fwd->client_ip);
    PUT_LIT(&o, "\r\nX-Forwarded-Proto: ");
    put_str(&o, fwd->proto);
    PUT_LIT(&o, "\r\n");
    if (host || host_f) {
        PUT_LIT(&o, "X-Forwarded-Host: ");
        if (host)
            put(&o, host, host_len);
        else
            put(&o, lv_head_str(req, host_f->value), host_f->value_len);
        PUT_LIT(&o, "\r\n");
    }
    PUT_LIT(&o, "X-Real-IP: ");
    put_str(&o, fwd->client_ip);
    PUT_LIT(&o, "\r\n");
    if (fwd->extra) put_str(&o, fwd->extra);

    if (fwd->framing == LV_FRAME_LENGTH) {
        PUT_LIT(&o, "Content-Length: ");
        put_u64(&o, fwd->content_length);
        PUT_LIT(&o, "\r\n");
    } else if (fwd->framing == LV_FRAME_CHUNKED) {
        PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    }
    PUT_LIT(&o, "\r\n");
    return o.err;
}

size_t lv_rewrite_response_size(const struct lv_head *resp, const struct lv_resp_info *info)
{
    size_t n = resp && resp->buf ? resp->buf->len : 0;
    n += (resp ? (size_t)resp->nfields * 4 : 0) + 256;
    if (info->extra) n += strlen(info->extra);
    return n;
}

int lv_rewrite_response(const struct lv_head *resp, const struct lv_resp_info *info,
                        struct lv_buf *out)
{
    struct out o = {out, 0};
    char line[9 + LV_FMT_U64_MAX + 1] = "HTTP/1.1 ";
    unsigned status = resp ? resp->status : info->status;
    size_t n = 9 + lv_fmt_u64(line + 9, status);
    line[n++] = ' ';
    put(&o, line, n);
    if (resp && resp->target_len > 0)
        put(&o, lv_head_str(resp, resp->target), resp->target_len);
    else
        put_str(&o, lv_status_reason(status));
    PUT_LIT(&o, "\r\n");

    /* levee frames what it sends: a body goes out with exactly one of its
     * own Content-Length, its own chunked coding, or Connection: close; the
     * backend's framing fields (and whatever Connection or the
     * configuration said of them) never decide it. */
    assert(info->framing != LV_FRAME_CLOSE || !info->keep_alive);
    for (uint32_t i = 0; resp && i < resp->nfields; i++) {
        const struct lv_hfield *f = &resp->fields[i];
        if (f->flags & (LV_HF_HOP | LV_HF_DROP)) continue;
        /* Without a body (HEAD, 204, 304, 1xx) the backend's Content-Length
         * describes the representation and passes as it is; with one,
         * levee writes its own below. */
        if (info->framing != LV_FRAME_NONE && LV_HFIELD_IS(resp, f, "content-length")) continue;
        put_field(&o, resp, f);
    }
    if (info->extra) put_str(&o, info->extra);
    if (info->framing == LV_FRAME_LENGTH) {
        PUT_LIT(&o, "Content-Length: ");
        put_u64(&o, info->content_length);
        PUT_LIT(&o, "\r\n");
    } else if (info->framing == LV_FRAME_CHUNKED) {
        PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    }
    if (status >= 200) {
        if (!info->keep_alive)
            PUT_LIT(&o, "Connection: close\r\n");
        else if (info->client_http10)
            PUT_LIT(&o, "Connection: keep-alive\r\n");
    }
    PUT_LIT(&o, "\r\n");
    return o.err;
}

size_t lv_chunk_header(char *out, uint64_t len)
{
    size_t n = lv_fmt_hex(out, len);
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}
