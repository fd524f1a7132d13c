/* levee's own error responses. */
#include "http/status.h"

#include <stdio.h>
#include <uv.h>

int lv_status_write(struct lv_buf *out, enum lv_fail_kind kind, const struct lv_status_opts *o)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    char body[256];
    int blen = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}\n",
                        fi->status, fi->reason, fi->message);
    if (blen < 0 || (size_t)blen >= sizeof(body)) return UV_ENOBUFS;
    char retry[48] = "";
    if (o->retry_after) snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", o->retry_after);
    const char *conn = !o->keep_alive     ? "Connection: close\r\n"
                       : o->client_http10 ? "Connection: keep-alive\r\n"
                                          : "";
    char *dst = out->data + out->len;
    size_t room = out->cap - out->len;
    int n = snprintf(dst, room,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %d\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s%s%s\r\n"
                     "%s",
                     fi->status, lv_status_reason((unsigned)fi->status), blen, retry, conn,
                     o->extra ? o->extra : "", o->head ? "" : body);
    if (n < 0 || (size_t)n >= room) return UV_ENOBUFS;
    out->len += (uint32_t)n;
    return o->head ? 0 : blen;
}
