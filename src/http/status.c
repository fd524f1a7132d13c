/* Reason phrases and levee's own error responses. */
#include "http/status.h"

#include <stdio.h>

const char *lv_status_reason(unsigned s)
{
    switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

int lv_status_write(struct lv_buf *out, enum lv_fail_kind kind, const struct lv_status_opts *o)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    char body[256];
    int blen = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}\n",
                        fi->status, fi->reason, fi->message);
    if (blen < 0 || (size_t)blen >= sizeof(body)) return -1;
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
    if (n < 0 || (size_t)n >= room) return -1;
    out->len += (uint32_t)n;
    return o->head ? 0 : blen;
}
