/*
 * The regular expressions of routes (path_regex, header and query regexes):
 * PCRE2, 8-bit and byte-wise (UTF mode is refused: paths and header values
 * are bytes, and a request with invalid UTF-8 must not turn a match into an
 * error). A pattern is compiled once, when the configuration is loaded, and
 * JIT-compiled where the platform allows; a compiled pattern is immutable
 * and shared by every worker.
 *
 * Matching takes a match data block that its thread owns (one per worker:
 * lv_regex_md_create), so that no match allocates, and bounded effort: a
 * pattern that backtracks catastrophically on some input gives up after
 * LV_REGEX_MATCH_LIMIT steps and counts as no match.
 */
#ifndef LV_ROUTE_REGEX_H
#define LV_ROUTE_REGEX_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define LV_REGEX_MAX_PATTERN 1024 /* bytes of one pattern */
#define LV_REGEX_MAX_CAPTURES 9   /* $1 .. $9 are kept; more groups are allowed */
#define LV_REGEX_MATCH_LIMIT 100000u

struct lv_regex {
    pcre2_code *code;
    pcre2_match_context *mctx; /* the limits; read-only once made */
    uint32_t ngroups;          /* capture groups in the pattern */
};

/*
 * Compiles pattern[0..len). Returns the regex (caller owns; free with
 * lv_regex_destroy), or NULL after writing PCRE2's message to err (errcap
 * bytes, NUL-terminated) and the offset in the pattern where the problem is
 * to *erroff. A pattern longer than LV_REGEX_MAX_PATTERN is refused.
 */
struct lv_regex *lv_regex_create(const char *pattern, size_t len, char *err, size_t errcap,
                                 size_t *erroff);
void lv_regex_destroy(struct lv_regex *re);

/* A match data block with room for $0 .. $LV_REGEX_MAX_CAPTURES; owned by
 * one thread at a time. NULL when out of memory. */
pcre2_match_data *lv_regex_md_create(void);
void lv_regex_md_destroy(pcre2_match_data *md);

/*
 * Matches s[0..n). Returns 1 on a match (the offsets are in md:
 * pcre2_get_ovector_pointer), 0 on none, -1 when the match gave up (limit
 * reached; no match either, but worth counting).
 */
int lv_regex_match(const struct lv_regex *re, const char *s, size_t n, pcre2_match_data *md);

#endif
