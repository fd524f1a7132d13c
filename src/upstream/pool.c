/* The idle list: a core/list.h list, most recent first. */
#include "upstream/pool.h"

/* A zeroed pool (calloc'ed with its backend) works as an empty one. */
static void ensure_init(struct lv_pool *p)
{
    if (p->idle.next == NULL) lv_list_init(&p->idle);
}

static struct lv_pool_entry *entry_of(struct lv_list *n)
{
    return n ? lv_container_of(n, struct lv_pool_entry, node) : NULL;
}

void lv_pool_init(struct lv_pool *p)
{
    lv_list_init(&p->idle);
    p->n = 0;
    p->reused = 0;
    p->created = 0;
}

static void unlink_entry(struct lv_pool *p, struct lv_pool_entry *e)
{
    lv_list_remove(&e->node);
    e->pooled = false;
    p->n--;
}

struct lv_pool_entry *lv_pool_put(struct lv_pool *p, struct lv_pool_entry *e, size_t max_idle)
{
    ensure_init(p);
    lv_list_push_front(&p->idle, &e->node);
    e->pooled = true;
    p->n++;
    return lv_pool_trim(p, max_idle);
}

struct lv_pool_entry *lv_pool_trim(struct lv_pool *p, size_t max_idle)
{
    ensure_init(p);
    if (p->n <= max_idle) return NULL;
    struct lv_pool_entry *old = entry_of(lv_list_last(&p->idle));
    unlink_entry(p, old);
    return old;
}

struct lv_pool_entry *lv_pool_get(struct lv_pool *p)
{
    ensure_init(p);
    struct lv_pool_entry *e = entry_of(lv_list_first(&p->idle));
    if (e == NULL) return NULL;
    unlink_entry(p, e);
    p->reused++;
    return e;
}

void lv_pool_remove(struct lv_pool *p, struct lv_pool_entry *e)
{
    if (!e->pooled) return;
    unlink_entry(p, e);
}

struct lv_pool_entry *lv_pool_oldest(struct lv_pool *p)
{
    ensure_init(p);
    return entry_of(lv_list_last(&p->idle));
}
