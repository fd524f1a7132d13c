/* levee's own error responses. */
#include "http/status.h"

#include <stdio.h>
#include <uv.h>

size_t lv_status_body(char *out, size_t cap, enum lv_fail_kind kind)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    int n = snprintf(out, cap, "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}\n", fi->status,
                     fi->reason, fi->message);
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
