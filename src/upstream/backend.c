/* Shared backend state: creation, teardown, and whether it can serve. */
#include "upstream/backend.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"

struct lv_backend *lv_backend_create(const struct lv_config *cfg, unsigned index, unsigned nworkers)
{
    const struct lv_backend_cfg *bc = &cfg->backends[index];
    struct lv_backend *b = calloc(1, sizeof(*b));
    if (b == NULL) return NULL;
    b->id = strdup(bc->id);
    b->pools = calloc(nworkers, sizeof(*b->pools));
    if (b->id == NULL || b->pools == NULL ||
        lv_breaker_init(&b->breaker, &cfg->breaker, nworkers)) {
        free(b->id);
        free(b->pools);
        free(b);
        return NULL;
    }
    b->index = index;
    b->cfg = bc;
    b->nworkers = nworkers;
    atomic_init(&b->active, 0);
    atomic_init(&b->requests, 0);
    atomic_init(&b->healthy, true);
    atomic_init(&b->recovered_at, 0);
    lv_health_init(&b->health);
    for (unsigned i = 0; i < nworkers; i++)
        lv_pool_init(&b->pools[i], cfg->pool.max_idle);
    return b;
}

void lv_backend_destroy(struct lv_backend *b)
{
    if (b == NULL) return;
    lv_breaker_dispose(&b->breaker);
    free(b->pools);
    free(b->id);
    free(b);
}

bool lv_backend_usable(struct lv_backend *b, uint64_t now)
{
    if (!atomic_load_explicit(&b->healthy, memory_order_relaxed)) return false;
    switch (lv_breaker_state(&b->breaker)) {
    case LV_BREAKER_CLOSED: return true;
    case LV_BREAKER_OPEN: return now >= atomic_load(&b->breaker.open_until);
    case LV_BREAKER_HALF_OPEN:
        return atomic_load(&b->breaker.probes) < b->breaker.cfg.half_open_requests;
    }
    return false;
}

double lv_backend_ramp(const struct lv_backend *b, uint64_t now, uint64_t slow_start)
{
    uint64_t at =
        atomic_load_explicit(&((struct lv_backend *)b)->recovered_at, memory_order_relaxed);
    if (slow_start == 0 || at == 0 || now >= at + slow_start) return 1.0;
    /* Start at 10%, not 0: a recovered backend must see some traffic to
     * prove itself. */
    double f = (double)(now - at) / (double)slow_start;
    return 0.1 + 0.9 * f;
}

void lv_backend_recovered(struct lv_backend *b, uint64_t now)
{
    atomic_store(&b->recovered_at, now ? now : 1);
}
