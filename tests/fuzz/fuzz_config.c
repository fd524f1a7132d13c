/*
 * libFuzzer target: configuration files (YAML → typed config with errors).
 * Every input must either load or be rejected with messages; nothing may
 * crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *errs = fopen("/dev/null", "w");
    if (errs == NULL) return 0;
    int nerr = 0;
    struct lv_config *cfg =
        lv_config_load_string("fuzz.yaml", (const char *)data, size, errs, &nerr);
    lv_config_destroy(cfg);
    fclose(errs);
    return 0;
}
