/*
 * Cache directives (RFC 9111 §5.2): the Cache-Control field of a request or
 * a response, and the targeted fields of RFC 9213 (CDN-Cache-Control and
 * the like), which carry the same directives in Structured Fields
 * dictionary syntax (RFC 8941 §3.2).
 *
 * Parsing is forgiving where the RFC asks it to be and conservative where a
 * wrong guess would serve something it should not:
 * - a max-age or s-maxage that is not a number, or that appears twice with
 *   different values, makes the response stale (max-age 0; §4.2.1);
 * - delta-seconds larger than 2^31 are 2^31 (§1.2.2);
 * - an argument may be a token or a quoted string (§5.2);
 * - a qualified no-cache="..." or private="..." beyond LV_CC_QUAL_MAX lists
 *   counts as the unqualified directive, which is stricter;
 * - unknown directives are ignored (§5.2.3).
 * The parsed form borrows the field values it was read from (the qualified
 * lists point into them).
 */
#ifndef LV_CACHE_CC_H
#define LV_CACHE_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Directives without an argument (or whose argument was absent). */
enum {
    LV_CC_NO_STORE = 1u << 0,
    LV_CC_NO_CACHE = 1u << 1, /* unqualified: revalidate every use */
    LV_CC_PRIVATE = 1u << 2,  /* unqualified: a shared cache does not store it */
    LV_CC_PUBLIC = 1u << 3,
    LV_CC_MUST_REVALIDATE = 1u << 4,
    LV_CC_PROXY_REVALIDATE = 1u << 5,
    LV_CC_NO_TRANSFORM = 1u << 6,
    LV_CC_MUST_UNDERSTAND = 1u << 7,
    LV_CC_IMMUTABLE = 1u << 8,
    LV_CC_ONLY_IF_CACHED = 1u << 9,
};

#define LV_CC_ABSENT (-1)            /* a directive with a number that was not sent */
#define LV_CC_ANY INT64_MAX          /* max-stale without a value: any staleness */
#define LV_CC_DELTA_MAX 2147483648ll /* 2^31: larger delta-seconds are this (§1.2.2) */
#define LV_CC_QUAL_MAX 4             /* qualified lists kept per directive */

/* The field names of one qualified no-cache="a, b" or private="c". */
struct lv_cc_names {
    const char *p;
    uint32_t n;
};

struct lv_cc {
    uint32_t flags; /* LV_CC_* */
    /* seconds, or LV_CC_ABSENT */
    int64_t max_age, s_maxage, max_stale, min_fresh;
    int64_t swr, sie; /* stale-while-revalidate, stale-if-error (RFC 5861) */
    uint8_t n_no_cache, n_private;
    struct lv_cc_names no_cache[LV_CC_QUAL_MAX]; /* no-cache="names" */
    struct lv_cc_names private_[LV_CC_QUAL_MAX]; /* private="names" */
};

/* No directive at all. */
void lv_cc_init(struct lv_cc *cc);

/* Adds the directives of one Cache-Control field line. */
void lv_cc_parse(struct lv_cc *cc, const char *v, size_t n);

/*
 * Adds one line of a targeted field (RFC 9213 §2.1): a Structured Fields
 * dictionary whose members are directives (a Boolean for a directive
 * without argument, an Integer for delta-seconds, a String for the
 * qualified forms; a member of another type is ignored, ?0 means absent,
 * and a later member overrides an earlier one, as in any dictionary).
 * Returns 0, or -1 when the line is not a valid dictionary or is empty:
 * the field must then be ignored as a whole (cc is left partly filled:
 * discard it).
 */
int lv_cc_parse_sf(struct lv_cc *cc, const char *v, size_t n);

/* True if name is one of the field names in the qualified lists l[0..count). */
bool lv_cc_names_has(const struct lv_cc_names *l, unsigned count, const char *name, size_t len);

#endif
