/* The global connection limit (see maxconn.h). */
#include "net/maxconn.h"

uint64_t lv_maxconn_auto(uint64_t nofile, unsigned workers, size_t listeners, size_t backends)
{
    uint64_t reserve =
        LV_FD_RESERVE_FIXED + (uint64_t)workers * (LV_FD_RESERVE_WORKER + listeners) + backends;
    uint64_t n = nofile > reserve ? (nofile - reserve) / 2 : 0;
    if (n < 1) n = 1;
    return n > LV_MAXCONN_MAX ? LV_MAXCONN_MAX : n;
}

bool lv_maxconn_take(struct lv_maxconn *m)
{
    uint64_t limit = atomic_load(&m->limit);
    uint_fast64_t n = atomic_load(&m->open);
    while (n < limit) {
        if (atomic_compare_exchange_weak(&m->open, &n, n + 1)) return true;
    }
    return false;
}

bool lv_maxconn_give(struct lv_maxconn *m)
{
    atomic_fetch_sub(&m->open, 1);
    return atomic_load(&m->waiting) > 0;
}

bool lv_maxconn_room(struct lv_maxconn *m)
{
    return atomic_load(&m->open) < atomic_load(&m->limit);
}

bool lv_maxconn_wait(struct lv_maxconn *m, atomic_bool *flag)
{
    if (!atomic_exchange(flag, true)) atomic_fetch_add(&m->waiting, 1);
    if (!lv_maxconn_room(m)) return false;
    lv_maxconn_unwait(m, flag);
    return true;
}

bool lv_maxconn_unwait(struct lv_maxconn *m, atomic_bool *flag)
{
    if (!atomic_exchange(flag, false)) return false;
    atomic_fetch_sub(&m->waiting, 1);
    return true;
}
