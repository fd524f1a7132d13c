/* The idle list: a circular doubly linked list around a sentinel. */
#include "upstream/pool.h"

static void ensure_init(struct lv_pool *p)
{
    if (p->head.next == NULL) p->head.next = p->head.prev = &p->head;
}

void lv_pool_init(struct lv_pool *p)
{
    p->head.next = p->head.prev = &p->head;
    p->head.pooled = false;
    p->n = 0;
    p->reused = 0;
    p->created = 0;
}

static void unlink_entry(struct lv_pool *p, struct lv_pool_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->pooled = false;
    p->n--;
}

struct lv_pool_entry *lv_pool_put(struct lv_pool *p, struct lv_pool_entry *e, size_t max_idle)
{
    ensure_init(p);
    e->next = p->head.next;
    e->prev = &p->head;
    p->head.next->prev = e;
    p->head.next = e;
    e->pooled = true;
    p->n++;
    return lv_pool_trim(p, max_idle);
}

struct lv_pool_entry *lv_pool_trim(struct lv_pool *p, size_t max_idle)
{
    ensure_init(p);
    if (p->n <= max_idle) return NULL;
    struct lv_pool_entry *old = p->head.prev;
    unlink_entry(p, old);
    return old;
}

struct lv_pool_entry *lv_pool_get(struct lv_pool *p)
{
    ensure_init(p);
    if (p->n == 0) return NULL;
    struct lv_pool_entry *e = p->head.next;
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
    return p->n ? p->head.prev : NULL;
}
