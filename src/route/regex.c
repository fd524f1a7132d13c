/*
 * PCRE2 behind route/regex.h: compile options, limits, JIT, match.
 */
#include "route/regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lv_regex *lv_regex_create(const char *pattern, size_t len, char *err, size_t errcap,
                                 size_t *erroff)
{
    *erroff = 0;
    if (len > LV_REGEX_MAX_PATTERN) {
        snprintf(err, errcap, "longer than %d bytes", LV_REGEX_MAX_PATTERN);
        *erroff = LV_REGEX_MAX_PATTERN;
        return NULL;
    }
    struct lv_regex *re = calloc(1, sizeof(*re));
    if (re == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    int code;
    PCRE2_SIZE off = 0;
    /* PCRE2_NEVER_UTF: a leading (*UTF) cannot switch UTF mode on either. */
    re->code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_NEVER_UTF, &code, &off, NULL);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(err, errcap, "%s", (const char *)msg);
        *erroff = off;
        free(re);
        return NULL;
    }
    /* The interpreter is the fallback where the JIT is not available. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->ngroups);
    re->mctx = pcre2_match_context_create(NULL);
    if (re->mctx == NULL) {
        snprintf(err, errcap, "out of memory");
        lv_regex_destroy(re);
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, LV_REGEX_MATCH_LIMIT);
    pcre2_set_heap_limit(re->mctx, 1024); /* KiB of backtracking frames */
    return re;
}

void lv_regex_destroy(struct lv_regex *re)
{
    if (re == NULL) return;
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    free(re);
}

pcre2_match_data *lv_regex_md_create(void)
{
    return pcre2_match_data_create(LV_REGEX_MAX_CAPTURES + 1, NULL);
}

void lv_regex_md_destroy(pcre2_match_data *md)
{
    pcre2_match_data_free(md);
}

int lv_regex_match(const struct lv_regex *re, const char *s, size_t n, pcre2_match_data *md)
{
    /* A NULL subject is refused by PCRE2 even with length 0. */
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, re->mctx);
    if (rc >= 0) return 1; /* 0: a match with more groups than the block keeps */
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return -1;
}
