/*
 * HTTP-date parsing and formatting. Calendar arithmetic is Howard
 * Hinnant's days-from-civil algorithm (proleptic Gregorian), so a date maps
 * to seconds without the C library's time zone machinery.
 */
#include "http/date.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char wdays[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}; /* 1970-01-01 */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* A cursor over the value being parsed. */
struct cur {
    const char *p, *end;
};

static bool digits(struct cur *c, int n, int *out)
{
    if (c->end - c->p < n) return false;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9') return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return false;
    c->p += n;
    return true;
}

static bool month(struct cur *c, unsigned *m)
{
    if (c->end - c->p < 3) return false;
    for (unsigned i = 0; i < 12; i++) {
        if (strncasecmp(c->p, months[i], 3) == 0) {
            c->p += 3;
            *m = i + 1;
            return true;
        }
    }
    return false;
}

/* hour ":" minute ":" second */
static bool time_of_day(struct cur *c, int *h, int *mi, int *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") && digits(c, 2, s) &&
           *h <= 23 && *mi <= 59 && *s <= 60;
}

/* The day name: letters only; its value is not used. */
static bool day_name(struct cur *c)
{
    const char *start = c->p;
    while (c->p < c->end && ((*c->p | 0x20) >= 'a' && (*c->p | 0x20) <= 'z'))
        c->p++;
    return c->p - start >= 3 && c->p - start <= 9;
}

int lv_http_date_parse(const char *s, size_t n, int64_t now_secs, int64_t *secs)
{
    struct cur c = {s, s + n};
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
        c.end--;
    int day, h, mi, sec, year;
    unsigned m;
    if (!day_name(&c)) return -1;
    if (lit(&c, ", ")) {
        if (!digits(&c, 2, &day)) return -1;
        if (lit(&c, " ")) { /* IMF-fixdate */
            if (!month(&c, &m) || !lit(&c, " ") || !digits(&c, 4, &year) || !lit(&c, " ") ||
                !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " GMT"))
                return -1;
        } else { /* rfc850-date */
            int yy;
            if (!lit(&c, "-") || !month(&c, &m) || !lit(&c, "-") || !digits(&c, 2, &yy) ||
                !lit(&c, " ") || !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " GMT"))
                return -1;
            int64_t now_y;
            unsigned now_m, now_d;
            civil_from_days(now_secs >= 0 ? now_secs / 86400 : 0, &now_y, &now_m, &now_d);
            int64_t y = now_y - now_y % 100 + yy;
            if (y > now_y + 50) y -= 100;
            year = (int)y;
        }
    } else { /* asctime-date: day name, month, day (2DIGIT or SP 1DIGIT), time, year */
        if (!lit(&c, " ") || !month(&c, &m) || !lit(&c, " ")) return -1;
        if (lit(&c, " ")) {
            if (!digits(&c, 1, &day)) return -1;
        } else if (!digits(&c, 2, &day)) {
            return -1;
        }
        if (!lit(&c, " ") || !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " ") ||
            !digits(&c, 4, &year))
            return -1;
    }
    if (c.p != c.end || day < 1 || (unsigned)day > days_in_month(year, m)) return -1;
    *secs = days_from_civil(year, m, (unsigned)day) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

size_t lv_http_date_format(char *out, int64_t secs)
{
    const int64_t min = days_from_civil(0, 1, 1) * 86400;
    const int64_t max = days_from_civil(9999, 12, 31) * 86400 + 86399;
    if (secs < min) secs = min;
    if (secs > max) secs = max;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t wd = ((days % 7) + 7) % 7;
    char *p = out;
    memcpy(p, wdays[wd], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + d / 10);
    *p++ = (char)('0' + d % 10);
    *p++ = ' ';
    memcpy(p, months[m - 1], 3);
    p += 3;
    *p++ = ' ';
    *p++ = (char)('0' + y / 1000);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = ' ';
    int hh = (int)(rem / 3600), mm = (int)(rem / 60 % 60), ss = (int)(rem % 60);
    *p++ = (char)('0' + hh / 10);
    *p++ = (char)('0' + hh % 10);
    *p++ = ':';
    *p++ = (char)('0' + mm / 10);
    *p++ = (char)('0' + mm % 10);
    *p++ = ':';
    *p++ = (char)('0' + ss / 10);
    *p++ = (char)('0' + ss % 10);
    memcpy(p, " GMT", 4);
    p += 4;
    *p = '\0';
    return (size_t)(p - out);
}
