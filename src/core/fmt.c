/* Digits written backwards into a scratch array, then copied in order. */
#include "core/fmt.h"

#include <string.h>

size_t lv_fmt_u64(char *out, uint64_t v)
{
    char tmp[LV_FMT_U64_MAX];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + sizeof(tmp) - n, n);
    return n;
}

static const char hexdig[] = "0123456789abcdef";

size_t lv_fmt_hex(char *out, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = hexdig[v & 15];
        v >>= 4;
    } while (v);
    memcpy(out, tmp + sizeof(tmp) - n, n);
    return n;
}

size_t lv_fmt_hex_fixed(char *out, uint64_t v, unsigned width)
{
    if (width == 0) width = 1;
    if (width > 16) width = 16;
    for (unsigned i = width; i-- > 0;) {
        out[i] = hexdig[v & 15];
        v >>= 4;
    }
    return width;
}

size_t lv_fmt_milli(char *out, uint64_t n)
{
    size_t k = lv_fmt_u64(out, n / 1000);
    unsigned frac = (unsigned)(n % 1000);
    out[k] = '.';
    out[k + 1] = (char)('0' + frac / 100);
    out[k + 2] = (char)('0' + frac / 10 % 10);
    out[k + 3] = (char)('0' + frac % 10);
    return k + 4;
}
