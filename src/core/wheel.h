/*
 * A coarse timer wheel: one per worker, for the timeouts every connection
 * restarts on every request (client header and idle timers, backend
 * connection phases). Starting, restarting and stopping a timer is a few
 * pointer writes (a list unlink and link); the worker's loop needs one
 * libuv timer for the whole wheel, re-armed only when the earliest slot
 * changes for the earlier (net/sock.c drives it).
 *
 * Time is in milliseconds, passed in (`now`): the wheel reads no clock and
 * is tested with a fake one. Slots are LV_WHEEL_TICK ms wide; there are
 * LV_WHEEL_SLOTS of them, and a deadline further than a turn of the wheel
 * waits in its slot for the turns to pass (its exact deadline is kept and
 * checked). A timer fires at its deadline or less than one tick later,
 * never before.
 *
 *   stopped ──lv_wheel_start──► pending ──lv_wheel_expire (deadline <= now)──► stopped
 *      ▲                          │ lv_wheel_start again: moved to its new deadline
 *      └────────lv_wheel_stop─────┘
 */
#ifndef LV_CORE_WHEEL_H
#define LV_CORE_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

#define LV_WHEEL_TICK 8     /* ms per slot */
#define LV_WHEEL_SLOTS 1024 /* a turn: about 8 s */

struct lv_wheel_timer;
typedef void (*lv_wheel_cb)(struct lv_wheel_timer *t);

/* Embedded by its owner; zeroed memory is a stopped timer. */
struct lv_wheel_timer {
    struct lv_list node; /* linked while pending */
    uint64_t deadline;
    unsigned slot;  /* while pending */
    lv_wheel_cb cb; /* for the driver; the wheel only stores it */
    void *data;
};

struct lv_wheel {
    struct lv_list slots[LV_WHEEL_SLOTS];
    uint64_t used[LV_WHEEL_SLOTS / 64]; /* a bit per non-empty slot */
    uint64_t cur;                       /* the first tick not yet passed */
    uint64_t n;                         /* pending timers */
};

void lv_wheel_init(struct lv_wheel *w, uint64_t now);

static inline bool lv_wheel_timer_pending(const struct lv_wheel_timer *t)
{
    return t->node.next != NULL && lv_list_linked(&t->node);
}

/* (Re)starts t to fire at `deadline` (a past deadline fires at the next
 * expiry). O(1). */
void lv_wheel_start(struct lv_wheel *w, struct lv_wheel_timer *t, uint64_t deadline);

/* Stops t; no-op when it is not pending. O(1). */
void lv_wheel_stop(struct lv_wheel *w, struct lv_wheel_timer *t);

/* Takes one timer whose deadline is <= now off the wheel (stopped) and
 * returns it, or NULL when none is due. Call until NULL; the caller runs
 * each one's callback, which may start and stop timers meanwhile. */
struct lv_wheel_timer *lv_wheel_expire(struct lv_wheel *w, uint64_t now);

/* When lv_wheel_expire should next be called: the end of the earliest
 * non-empty slot (>= every deadline in it), or UINT64_MAX when the wheel
 * is empty. */
uint64_t lv_wheel_next(const struct lv_wheel *w);

#endif
