/*
 * The typed configuration: what levee runs on, after the YAML file has been
 * read, defaulted and validated. A config is immutable once loaded; a reload
 * builds a new one beside it (issue: reload) and requests in flight keep the
 * one they started with.
 *
 * Every duration is in milliseconds, every size in bytes.
 */
#ifndef LV_CONFIG_CONFIG_H
#define LV_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "config/config-t.h"

struct lv_cfg_field;

/* Fills cfg (zeroed) with every default (no listeners or backends yet).
 * Returns 0, or UV_ENOMEM (what was allocated is freed by
 * lv_config_destroy). */
int lv_config_defaults(struct lv_config *cfg);

/*
 * Loads and validates a file. On success returns a new config (caller owns;
 * free with lv_config_destroy) and *nerrors = 0. On failure returns NULL and
 * writes every error, one "FILE:LINE:COL: message" line each, to errs and
 * sets *nerrors.
 */
struct lv_config *lv_config_load(const char *path, FILE *errs, int *nerrors);

/* Same, from a string in memory; `name` is used in messages. */
struct lv_config *lv_config_load_string(const char *name, const char *text, size_t len, FILE *errs,
                                        int *nerrors);

void lv_config_destroy(struct lv_config *cfg);

/* The root field table (static, NULL-terminated; config/load.h says what a
 * field is); the tables of the sections hang off its aux. */
const struct lv_cfg_field *lv_config_fields(void);

#endif
