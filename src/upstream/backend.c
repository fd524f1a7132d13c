/* Shared backend state: creation and teardown. */
#include "upstream/backend.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"

struct lv_backend *lv_backend_create(const struct lv_backend_cfg *cfg, unsigned index,
                                     unsigned nworkers, unsigned max_idle)
{
    struct lv_backend *b = calloc(1, sizeof(*b));
    if (b == NULL) return NULL;
    b->id = strdup(cfg->id);
    b->pools = calloc(nworkers, sizeof(*b->pools));
    if (b->id == NULL || b->pools == NULL) {
        free(b->id);
        free(b->pools);
        free(b);
        return NULL;
    }
    b->index = index;
    b->cfg = cfg;
    b->nworkers = nworkers;
    atomic_init(&b->active, 0);
    atomic_init(&b->requests, 0);
    for (unsigned i = 0; i < nworkers; i++)
        lv_pool_init(&b->pools[i], max_idle);
    return b;
}

void lv_backend_destroy(struct lv_backend *b)
{
    if (b == NULL) return;
    free(b->pools);
    free(b->id);
    free(b);
}
