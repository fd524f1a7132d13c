/*
 * One llhttp settings table for requests and responses: the head goes into
 * an lv_head, the rest to the owner's handler.
 */
#include "http/parser.h"

#include <pthread.h>
#include <stddef.h>

#include "core/list.h"

static struct lv_http_parser *of(llhttp_t *ll)
{
    return lv_container_of(ll, struct lv_http_parser, ll);
}

/* The flags a Connection field sets in llhttp. */
#define CONN_FLAGS (F_CONNECTION_KEEP_ALIVE | F_CONNECTION_CLOSE | F_CONNECTION_UPGRADE)

static int stop(struct lv_http_parser *p, enum lv_fail_kind kind)
{
    p->fail = kind;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *ll)
{
    struct lv_http_parser *p = of(ll);
    p->fail = LV_FAIL_NONE;
    p->chunk_ext = 0;
    p->in_trailers = false;
    p->trailer_name = false;
    p->trailer_fields = p->trailer_bytes = 0;
    if (p->h->on_begin && p->h->on_begin(p) != 0) return HPE_USER;
    return 0;
}

/* Both limits (bytes and field count) answer the same way: 431 for a
 * request, bad_response for a response. */
static int head_result(struct lv_http_parser *p, int rc)
{
    return rc == 0 ? 0 : stop(p, p->size_fail);
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
    struct lv_http_parser *p = of(ll);
    if (p->head->target_len + len > p->max_target) return stop(p, LV_FAIL_URI_TOO_LONG);
    return head_result(p, lv_head_add_target(p->head, p->pool, at, len));
}

static int on_status(llhttp_t *ll, const char *at, size_t len)
{
    struct lv_http_parser *p = of(ll);
    return head_result(p, lv_head_add_target(p->head, p->pool, at, len));
}

/* A piece of a trailer field: counted, never stored (see parser.h). */
static int trailer(struct lv_http_parser *p, size_t len, bool name)
{
    if (name && !p->trailer_name) p->trailer_fields++;
    p->trailer_name = name;
    p->trailer_bytes += (uint32_t)(len < UINT32_MAX ? len : UINT32_MAX);
    if (p->trailer_fields > p->trailer_max_fields || p->trailer_bytes > p->trailer_limit)
        return stop(p, p->size_fail);
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    struct lv_http_parser *p = of(ll);
    if (p->in_trailers) return trailer(p, len, true);
    return head_result(p, lv_head_add_name(p->head, p->pool, at, len));
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    struct lv_http_parser *p = of(ll);
    if (p->in_trailers) return trailer(p, len, false);
    return head_result(p, lv_head_add_value(p->head, p->pool, at, len));
}

static int on_headers_complete(llhttp_t *ll)
{
    struct lv_http_parser *p = of(ll);
    struct lv_head *h = p->head;
    if (h->buf == NULL) {
        /* A head with no target bytes and no fields (a bare status line). */
        if (lv_head_add_target(h, p->pool, "", 0) != 0) return stop(p, p->size_fail);
        if (h->buf == NULL) {
            h->buf = lv_buf_get_size(p->pool, h->limit);
            if (h->buf == NULL) return stop(p, LV_FAIL_INTERNAL);
        }
    }
    /* llhttp takes any d.d version on requests (LENIENT_VERSION, set at
     * init) so that every version levee does not speak gets the same 505,
     * not a 400 for some of them. */
    if (ll->type == HTTP_REQUEST && !(ll->http_major == 1 && ll->http_minor <= 1))
        return stop(p, LV_FAIL_VERSION);
    /* RFC 9112 §5.1: no whitespace between a field name and its colon
     * (llhttp only refuses it for the fields it interprets). */
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        char last = f->name_len ? lv_head_str(h, f->name)[f->name_len - 1] : ' ';
        if (last == ' ' || last == '\t')
            return stop(p, ll->type == HTTP_REQUEST ? LV_FAIL_BAD_REQUEST : LV_FAIL_BAD_RESPONSE);
    }
    h->method = ll->method;
    h->http_major = ll->http_major;
    h->http_minor = ll->http_minor;
    h->status = (uint16_t)ll->status_code;
    lv_head_classify(h, p->drop, p->ndrop);
    /* From here on, header callbacks carry the trailer section. */
    p->in_trailers = true;
    p->trailer_limit = h->limit;
    p->trailer_max_fields = h->max_fields;
    p->head_conn_flags = ll->flags & CONN_FLAGS;
    int rc = p->h->on_head(p);
    if (rc < 0) return HPE_USER;
    return rc;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    struct lv_http_parser *p = of(ll);
    return p->h->on_body(p, at, len) == 0 ? 0 : HPE_USER;
}

/* Chunk extensions are parsed and dropped (levee re-frames the body), but
 * a header line of unbounded length is still work for nothing: capped. */
static int on_chunk_extension(llhttp_t *ll, const char *at, size_t len)
{
    (void)at;
    struct lv_http_parser *p = of(ll);
    if (len > LV_CHUNK_EXT_MAX - p->chunk_ext)
        return stop(p, ll->type == HTTP_REQUEST ? LV_FAIL_BAD_REQUEST : LV_FAIL_BAD_RESPONSE);
    p->chunk_ext += (uint32_t)len;
    return 0;
}

/* The end of a chunk header: the next one starts from nothing. */
static int on_chunk_header(llhttp_t *ll)
{
    of(ll)->chunk_ext = 0;
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct lv_http_parser *p = of(ll);
    /* A request's dropped trailers decide nothing (parser.h): llhttp reads
     * its flags for keep-alive after this callback. */
    if (p->trailer_fields > 0 && ll->type == HTTP_REQUEST)
        ll->flags = (uint16_t)((ll->flags & ~CONN_FLAGS) | p->head_conn_flags);
    return p->h->on_complete(p);
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_status = on_status;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    settings.on_chunk_extension_name = on_chunk_extension;
    settings.on_chunk_extension_value = on_chunk_extension;
    settings.on_chunk_header = on_chunk_header;
}

void lv_http_parser_init(struct lv_http_parser *p, llhttp_type_t type,
                         const struct lv_http_handler *h, void *owner)
{
    pthread_once(&settings_once, settings_init);
    llhttp_init(&p->ll, type, &settings);
    p->h = h;
    p->owner = owner;
    p->head = NULL;
    p->pool = NULL;
    p->cur_buf = NULL;
    p->max_target = UINT32_MAX;
    p->fail = LV_FAIL_NONE;
    p->size_fail = type == HTTP_REQUEST ? LV_FAIL_HEADERS_TOO_LARGE : LV_FAIL_BAD_RESPONSE;
    p->drop = NULL;
    p->ndrop = 0;
    p->chunk_ext = 0;
    p->in_trailers = p->trailer_name = false;
    p->trailer_fields = p->trailer_bytes = 0;
    p->trailer_max_fields = p->trailer_limit = 0;
    p->head_conn_flags = 0;
    if (type == HTTP_REQUEST) p->ll.lenient_flags |= LENIENT_VERSION;
}

llhttp_errno_t lv_http_parser_execute(struct lv_http_parser *p, struct lv_buf *b, const char *at,
                                      size_t len, size_t *consumed)
{
    p->cur_buf = b;
    llhttp_errno_t err = llhttp_execute(&p->ll, at, len);
    p->cur_buf = NULL;
    if (err == HPE_OK) {
        *consumed = len;
    } else {
        const char *pos = llhttp_get_error_pos(&p->ll);
        *consumed = pos && pos >= at && pos <= at + len ? (size_t)(pos - at) : len;
    }
    return err;
}

enum lv_fail_kind lv_http_parser_failure(const struct lv_http_parser *p, llhttp_errno_t err)
{
    if (p->fail != LV_FAIL_NONE) return p->fail;
    if (p->ll.type == HTTP_RESPONSE) return LV_FAIL_BAD_RESPONSE;
    switch (err) {
    case HPE_PAUSED_H2_UPGRADE: return LV_FAIL_VERSION; /* "PRI * HTTP/2.0" */
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING:
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_INVALID_CHUNK_SIZE: return LV_FAIL_BAD_FRAMING;
    case HPE_INVALID_METHOD:
    default: return LV_FAIL_BAD_REQUEST;
    }
}
