/*
 * Prints every key of levee's configuration file, one per line, from the
 * field tables the loader itself walks (src/config): "timeouts.connect",
 * "backends.tls.ca_file", ... (a list's items are not marked: "listen.address"
 * is the address of a `listen:` item). Each line is the dotted path, a tab,
 * and "group" for a key with keys under it, "value" otherwise.
 *
 * tests/integration/test_92_docs.py compares this list with levee.yaml(5)
 * and README.md's reference table, so that a key cannot be added to the
 * code without its documentation, nor documented without existing.
 */
#include <stdio.h>

#include "config/config.h"
#include "config/load.h"

static void walk(const struct lv_cfg_field *fields, const char *prefix, int depth)
{
    for (const struct lv_cfg_field *f = fields; f->key; f++) {
        char path[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", f->key);
        /* aux is a table unless the field is a choice (then it is names). */
        const struct lv_cfg_field *sub = f->parse == lv_cfg_choice ? NULL : f->aux;
        printf("%s\t%s\n", path, sub ? "group" : "value");
        if (sub && depth < 8) walk(sub, path, depth + 1);
    }
}

int main(void)
{
    walk(lv_config_fields(), "", 0);
    return 0;
}
