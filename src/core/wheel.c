/* Slots by tick (deadline / LV_WHEEL_TICK modulo the slot count), each a
 * list of timers with their exact deadlines; a bitmap finds the next
 * non-empty slot without visiting the empty ones. */
#include "core/wheel.h"

#include <assert.h>
#include <stddef.h>

#define NWORDS (LV_WHEEL_SLOTS / 64)

void lv_wheel_init(struct lv_wheel *w, uint64_t now)
{
    for (unsigned i = 0; i < LV_WHEEL_SLOTS; i++)
        lv_list_init(&w->slots[i]);
    for (unsigned i = 0; i < NWORDS; i++)
        w->used[i] = 0;
    w->cur = now / LV_WHEEL_TICK;
    w->n = 0;
}

static unsigned slot_of(uint64_t tick)
{
    return (unsigned)(tick % LV_WHEEL_SLOTS);
}

static void mark(struct lv_wheel *w, unsigned s)
{
    w->used[s / 64] |= 1ull << (s % 64);
}

/* Clears the slot's bit once its list is empty. */
static void unmark_if_empty(struct lv_wheel *w, unsigned s)
{
    if (lv_list_empty(&w->slots[s])) w->used[s / 64] &= ~(1ull << (s % 64));
}

void lv_wheel_stop(struct lv_wheel *w, struct lv_wheel_timer *t)
{
    if (!lv_wheel_timer_pending(t)) return;
    lv_list_remove(&t->node);
    w->n--;
    unmark_if_empty(w, t->slot);
}

void lv_wheel_start(struct lv_wheel *w, struct lv_wheel_timer *t, uint64_t deadline)
{
    lv_wheel_stop(w, t);
    uint64_t tick = deadline / LV_WHEEL_TICK;
    if (tick < w->cur) tick = w->cur; /* already due: the next slot visited */
    unsigned s = slot_of(tick);
    t->deadline = deadline;
    t->slot = s;
    lv_list_push_back(&w->slots[s], &t->node);
    mark(w, s);
    w->n++;
}

struct lv_wheel_timer *lv_wheel_expire(struct lv_wheel *w, uint64_t now)
{
    uint64_t nt = now / LV_WHEEL_TICK;
    /* Asleep for more than a turn: every slot is visited once below. */
    if (nt >= w->cur + LV_WHEEL_SLOTS) w->cur = nt - LV_WHEEL_SLOTS + 1;
    while (w->n > 0 && w->cur <= nt) {
        unsigned s = slot_of(w->cur);
        if (w->used[s / 64] & (1ull << (s % 64))) {
            struct lv_list *head = &w->slots[s];
            for (struct lv_list *n = head->next; n != head; n = n->next) {
                struct lv_wheel_timer *t = lv_container_of(n, struct lv_wheel_timer, node);
                if (t->deadline <= now) {
                    lv_list_remove(&t->node);
                    w->n--;
                    unmark_if_empty(w, s);
                    return t;
                }
            }
        }
        if (w->cur == nt) break; /* this tick is not over: later deadlines in it wait */
        w->cur++;
    }
    return NULL;
}

uint64_t lv_wheel_next(const struct lv_wheel *w)
{
    if (w->n == 0) return UINT64_MAX;
    unsigned start = slot_of(w->cur);
    /* The first used slot at or after `start`, going round once. */
    for (unsigned k = 0; k <= NWORDS; k++) {
        unsigned word = (start / 64 + k) % NWORDS;
        uint64_t bits = w->used[word];
        if (k == 0) bits &= ~0ull << (start % 64);
        if (k == NWORDS) bits &= (start % 64) ? ~(~0ull << (start % 64)) : 0;
        if (bits == 0) continue;
        unsigned s = word * 64 + (unsigned)__builtin_ctzll(bits);
        uint64_t dist = (s + LV_WHEEL_SLOTS - start) % LV_WHEEL_SLOTS;
        return (w->cur + dist + 1) * LV_WHEEL_TICK;
    }
    assert(!"a pending timer in no slot");
    return UINT64_MAX;
}
