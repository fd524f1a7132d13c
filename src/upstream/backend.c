/* Shared backend state: its lifetime. */
#include "upstream/backend.h"

#include <stdlib.h>
#include <string.h>

struct lv_backend *lv_backend_create(const char *id, unsigned nworkers)
{
    struct lv_backend *b = calloc(1, sizeof(*b));
    if (b == NULL) return NULL;
    b->id = strdup(id);
    b->log_conn.burst = LV_LOG_BURST_STATE;
    b->log_state.burst = LV_LOG_BURST_STATE;
    b->pools = calloc(nworkers, sizeof(*b->pools));
    b->wstats = calloc(nworkers, sizeof(*b->wstats));
    b->tls_sessions = calloc(nworkers, sizeof(*b->tls_sessions));
    if (b->id == NULL || b->pools == NULL || b->wstats == NULL || b->tls_sessions == NULL ||
        lv_latwin_init(&b->lat, nworkers) != 0) {
        lv_latwin_dispose(&b->lat);
        free(b->id);
        free(b->pools);
        free(b->wstats);
        free(b->tls_sessions);
        free(b);
        return NULL;
    }
    if (lv_breaker_init(&b->breaker, nworkers) != 0) {
        lv_latwin_dispose(&b->lat);
        free(b->id);
        free(b->pools);
        free(b->wstats);
        free(b->tls_sessions);
        free(b);
        return NULL;
    }
    b->nworkers = nworkers;
    atomic_init(&b->refs, 1);
    atomic_init(&b->active, 0);
    atomic_init(&b->admin_state, LV_ADMIN_ENABLED);
    atomic_init(&b->retired, false);
    atomic_init(&b->healthy, true);
    atomic_init(&b->rising, false);
    atomic_init(&b->recovered_at, 0);
    atomic_init(&b->revive.word, 0);
    atomic_init(&b->down_at, 0);
    atomic_init(&b->last_pass, 0);
    atomic_init(&b->unreachable, false);
    lv_health_init(&b->health);
    for (unsigned i = 0; i < nworkers; i++)
        lv_pool_init(&b->pools[i]);
    return b;
}

void lv_backend_ref(struct lv_backend *b)
{
    atomic_fetch_add(&b->refs, 1);
}

void lv_backend_unref(struct lv_backend *b)
{
    if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1) return;
    lv_breaker_dispose(&b->breaker);
    lv_latwin_dispose(&b->lat);
    for (unsigned i = 0; i < b->nworkers; i++) {
        if (b->tls_sessions[i]) SSL_SESSION_free(b->tls_sessions[i]);
    }
    free(b->tls_sessions);
    free(b->pools);
    free(b->wstats);
    free(b->id);
    free(b);
}

void lv_backend_cfg_dispose(struct lv_backend_cfg *bc)
{
    free(bc->id);
    free(bc->url);
    free(bc->host);
    free(bc->authority);
    free(bc->tls.ca_file);
    free(bc->tls.server_name);
    free(bc->tls.cert);
    free(bc->tls.key);
    if (bc->tls_ctx) SSL_CTX_free(bc->tls_ctx);
    memset(bc, 0, sizeof(*bc));
}

void lv_backend_recovered(struct lv_backend *b, uint64_t now)
{
    atomic_store(&b->recovered_at, now ? now : 1);
    lv_ewma_reset(&b->rtt);
}

const char *lv_admin_state_name(enum lv_admin_state s)
{
    switch (s) {
    case LV_ADMIN_ENABLED: return "enabled";
    case LV_ADMIN_DRAINING: return "draining";
    case LV_ADMIN_DISABLED: return "disabled";
    }
    return "enabled";
}
