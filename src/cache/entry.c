/*
 * Entries and their bodies: one allocation per entry (head, keys, meta),
 * a body of chunks filled by one writer and read by any number of readers
 * without a lock (release stores of a chunk's `next`, of `committed` and of
 * `state`; acquire loads on the reading side), and the waiters readers park
 * on. The table that links entries is store.c.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cache/key.h"
#include "cache/store-i.h"

#define CHUNK_MIN 4096
#define CHUNK_MAX (256 * 1024)

uint64_t lv_cache_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* --- waiters ---------------------------------------------------------------- */

void lv_cache_waiter_arm(struct lv_cache_waiter **list, pthread_mutex_t *lock,
                         struct lv_cache_waiter *w)
{
    assert(!w->armed);
    w->lock = lock;
    w->armed = true;
    w->next = *list;
    w->pprev = list;
    if (*list) (*list)->pprev = &w->next;
    *list = w;
}

void lv_cache_waiters_fire(struct lv_cache_waiter **list)
{
    struct lv_cache_waiter *w = *list;
    *list = NULL;
    while (w) {
        struct lv_cache_waiter *next = w->next;
        w->armed = false;
        w->next = NULL;
        w->pprev = NULL;
        w->cb(w->arg);
        w = next;
    }
}

bool lv_cache_waiter_cancel(struct lv_cache_waiter *w)
{
    if (w->lock == NULL) return false;
    pthread_mutex_lock(w->lock);
    bool was = w->armed;
    if (was) {
        *w->pprev = w->next;
        if (w->next) w->next->pprev = w->pprev;
        w->next = NULL;
        w->pprev = NULL;
        w->armed = false;
    }
    pthread_mutex_unlock(w->lock);
    return was;
}

/* --- entries -------------------------------------------------------------------- */

static void body_unref(struct lv_cache_store *s, struct lv_body *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1) return;
    struct lv_chunk *c = atomic_load(&b->first);
    while (c) {
        struct lv_chunk *next = atomic_load(&c->next);
        free(c);
        c = next;
    }
    lv_cache_uncharge(s, b->charged + LV_CACHE_ALLOC_OVERHEAD + sizeof(*b));
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void lv_cache_entry_free(struct lv_cache_entry *e)
{
    assert(!e->linked);
    struct lv_cache_store *s = e->store;
    if (e->body) body_unref(s, e->body);
    if (e->charged) lv_cache_uncharge(s, e->charge);
    free(e);
}

struct lv_cache_entry *lv_cache_entry_ref(struct lv_cache_entry *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

void lv_cache_entry_release(struct lv_cache_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) lv_cache_entry_free(e);
}

static struct lv_body *body_new(struct lv_cache_store *s, int64_t content_length)
{
    if (lv_cache_charge(s, sizeof(struct lv_body) + LV_CACHE_ALLOC_OVERHEAD) != 0) return NULL;
    struct lv_body *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        lv_cache_uncharge(s, sizeof(struct lv_body) + LV_CACHE_ALLOC_OVERHEAD);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    atomic_init(&b->first, NULL);
    atomic_init(&b->committed, 0);
    atomic_init(&b->state, LV_BODY_FILLING);
    b->content_length = content_length;
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

struct lv_cache_entry *lv_cache_entry_create(struct lv_cache_store *s,
                                             const struct lv_cache_entry_spec *spec)
{
    if (spec->nfields > LV_CACHE_MAX_FIELDS || spec->key_len > LV_CACHE_KEY_MAX ||
        spec->vary_len > LV_CACHE_VARY_MAX || spec->vkey_len > LV_CACHE_VKEY_MAX)
        return NULL;
    size_t text = 0;
    for (uint32_t i = 0; i < spec->nfields; i++)
        text += (size_t)spec->fields[i].name_len + spec->fields[i].value_len;
    if (text > LV_CACHE_HEAD_MAX) return NULL;
    size_t fsize = spec->nfields * sizeof(struct lv_hfield);
    struct lv_cache_entry *e = lv_cache_entry_alloc(s, LV_CE_OBJ, spec->key, spec->key_len, fsize,
                                                    spec->vary_len + spec->vkey_len + text);
    if (e == NULL) return NULL;
    char *p = (char *)e->key + e->klen;
    if (spec->vary_len) memcpy(p, spec->vary, spec->vary_len);
    e->vary = p;
    e->vlen = (uint32_t)spec->vary_len;
    p += spec->vary_len;
    if (spec->vkey_len) memcpy(p, spec->vkey, spec->vkey_len);
    e->vkey = p;
    e->vklen = (uint32_t)spec->vkey_len;
    p += spec->vkey_len;
    e->text = p;
    uint32_t off = 0;
    for (uint32_t i = 0; i < spec->nfields; i++) {
        const struct lv_field *f = &spec->fields[i];
        struct lv_hfield *h = &e->fields[i];
        memcpy(p + off, f->name, f->name_len);
        h->name = off;
        h->name_len = f->name_len;
        off += f->name_len;
        memcpy(p + off, f->value, f->value_len);
        h->value = off;
        h->value_len = f->value_len;
        off += f->value_len;
        h->flags = 0;
    }
    e->nfields = spec->nfields;
    e->status = spec->status;
    e->meta = spec->meta;
    if (lv_cache_charge(s, e->charge) != 0) {
        free(e);
        return NULL;
    }
    e->charged = true;
    if (spec->share_of) {
        assert(spec->share_of->kind == LV_CE_OBJ);
        e->body = spec->share_of->body;
        atomic_fetch_add(&e->body->refs, 1);
    } else {
        e->body = body_new(s, spec->content_length);
        if (e->body == NULL) {
            lv_cache_entry_free(e);
            return NULL;
        }
    }
    return e;
}

const char *lv_cache_entry_key(const struct lv_cache_entry *e, size_t *len)
{
    *len = e->klen;
    return e->key;
}

uint16_t lv_cache_entry_status(const struct lv_cache_entry *e)
{
    return e->status;
}

const struct lv_cache_meta *lv_cache_entry_meta(const struct lv_cache_entry *e)
{
    return &e->meta;
}

struct lv_fields lv_cache_entry_fields(const struct lv_cache_entry *e)
{
    struct lv_fields f = {e->text, e->fields, e->nfields};
    return f;
}

void lv_cache_entry_vary(const struct lv_cache_entry *e, const char **vary, size_t *vary_len,
                         const char **vkey, size_t *vkey_len)
{
    *vary = e->vary;
    *vary_len = e->vlen;
    *vkey = e->vkey;
    *vkey_len = e->vklen;
}

bool lv_cache_entry_refresh_begin(struct lv_cache_entry *e, int64_t now)
{
    int_fast64_t cur = atomic_load(&e->refresh_until);
    while (cur <= now) {
        if (atomic_compare_exchange_weak(&e->refresh_until, &cur, now + LV_CACHE_REFRESH_LEASE))
            return true;
    }
    return false;
}

void lv_cache_entry_refresh_end(struct lv_cache_entry *e)
{
    atomic_store(&e->refresh_until, 0);
}

struct lv_cache_entry *lv_cache_entry_alloc(struct lv_cache_store *s, enum lv_ce_kind kind,
                                            const char *key, size_t klen, size_t fsize,
                                            size_t extra)
{
    size_t size = sizeof(struct lv_cache_entry) + fsize + klen + extra;
    struct lv_cache_entry *e = calloc(1, size);
    if (e == NULL) return NULL;
    e->kind = (uint8_t)kind;
    e->store = s;
    e->charge = size + LV_CACHE_ALLOC_OVERHEAD;
    atomic_init(&e->refs, 1);
    atomic_init(&e->refresh_until, 0);
    e->hash = lv_cache_hash(key, klen);
    e->fields = (struct lv_hfield *)(void *)(e + 1); /* the entry's size keeps the alignment */
    char *p = (char *)(e + 1) + fsize;
    memcpy(p, key, klen);
    e->key = p;
    e->klen = (uint32_t)klen;
    return e;
}

/* --- bodies ---------------------------------------------------------------------- */

static void body_wake(struct lv_body *b)
{
    pthread_mutex_lock(&b->lock);
    lv_cache_waiters_fire(&b->waiters);
    pthread_mutex_unlock(&b->lock);
}

static void body_end(struct lv_body *b, enum lv_cache_body_state st)
{
    atomic_store_explicit(&b->state, st, memory_order_release);
    body_wake(b);
}

void lv_cache_entry_abort(struct lv_cache_store *s, struct lv_cache_entry *e)
{
    if (atomic_load(&e->body->state) == LV_BODY_FILLING) body_end(e->body, LV_BODY_ABORTED);
    lv_cache_store_unlink(s, e);
}

/* The size of the next chunk: the rest of an announced length at once,
 * else doubling from CHUNK_MIN to CHUNK_MAX; never past max_object. */
static uint64_t next_chunk_cap(const struct lv_body *b, uint64_t committed, size_t need,
                               uint64_t max_object)
{
    uint64_t cap;
    if (b->content_length >= 0 && (uint64_t)b->content_length > committed)
        cap = (uint64_t)b->content_length - committed;
    else {
        cap = b->tail ? (uint64_t)b->tail->cap * 2 : CHUNK_MIN;
        if (cap > CHUNK_MAX) cap = CHUNK_MAX;
        if (cap < need) cap = need < CHUNK_MAX ? need : CHUNK_MAX;
    }
    if (cap > max_object - committed) cap = max_object - committed;
    return cap ? cap : 1;
}

int lv_cache_entry_append(struct lv_cache_store *s, struct lv_cache_entry *e, const void *data,
                          size_t n)
{
    struct lv_body *b = e->body;
    assert(e->kind == LV_CE_OBJ && atomic_load(&b->state) == LV_BODY_FILLING);
    uint64_t committed = atomic_load_explicit(&b->committed, memory_order_relaxed);
    uint64_t max_object = atomic_load(&s->max_object);
    if (n > max_object || committed > max_object - n) {
        lv_cache_entry_abort(s, e);
        return -1;
    }
    const char *p = data;
    size_t left = n;
    uint64_t at = committed;
    while (left > 0) {
        struct lv_chunk *c = b->tail;
        if (c == NULL || c->len == c->cap) {
            uint64_t cap = next_chunk_cap(b, at, left, max_object);
            uint64_t cost = sizeof(struct lv_chunk) + cap + LV_CACHE_ALLOC_OVERHEAD;
            struct lv_chunk *nc = NULL;
            if (lv_cache_charge(s, cost) == 0) {
                nc = malloc(sizeof(struct lv_chunk) + cap);
                if (nc == NULL) lv_cache_uncharge(s, cost);
            }
            if (nc == NULL) {
                /* The bytes copied into the last chunk so far were never
                 * committed: readers never see them. */
                lv_cache_entry_abort(s, e);
                return -1;
            }
            b->charged += cost;
            atomic_init(&nc->next, NULL);
            nc->start = c ? c->start + c->cap : 0;
            nc->cap = (uint32_t)cap;
            nc->len = 0;
            if (c)
                atomic_store_explicit(&c->next, nc, memory_order_release);
            else
                atomic_store_explicit(&b->first, nc, memory_order_release);
            b->tail = c = nc;
        }
        size_t k = c->cap - c->len < left ? c->cap - c->len : left;
        memcpy(c->data + c->len, p, k);
        c->len += (uint32_t)k;
        p += k;
        left -= k;
        at += k;
    }
    atomic_store_explicit(&b->committed, at, memory_order_release);
    body_wake(b);
    return 0;
}

int lv_cache_entry_finish(struct lv_cache_store *s, struct lv_cache_entry *e)
{
    struct lv_body *b = e->body;
    uint64_t committed = atomic_load(&b->committed);
    if (b->content_length >= 0 && committed != (uint64_t)b->content_length) {
        lv_cache_entry_abort(s, e);
        return -1;
    }
    body_end(b, LV_BODY_COMPLETE);
    return 0;
}

enum lv_cache_body_state lv_cache_entry_state(const struct lv_cache_entry *e)
{
    return (enum lv_cache_body_state)atomic_load_explicit(&e->body->state, memory_order_acquire);
}

uint64_t lv_cache_entry_body_len(const struct lv_cache_entry *e)
{
    return atomic_load_explicit(&e->body->committed, memory_order_acquire);
}

int64_t lv_cache_entry_length(const struct lv_cache_entry *e)
{
    if (e->body->content_length >= 0) return e->body->content_length;
    if (lv_cache_entry_state(e) == LV_BODY_COMPLETE) return (int64_t)lv_cache_entry_body_len(e);
    return -1;
}

enum lv_cache_read lv_cache_entry_read(const struct lv_cache_entry *e, struct lv_cache_cursor *cur,
                                       size_t max, const char **p, size_t *n)
{
    const struct lv_body *b = e->body;
    assert(max > 0);
    for (int pass = 0; pass < 2; pass++) {
        uint64_t committed = atomic_load_explicit(&b->committed, memory_order_acquire);
        if (cur->off < committed) {
            const struct lv_chunk *c = cur->chunk;
            if (c == NULL) c = atomic_load_explicit(&b->first, memory_order_acquire);
            while (cur->off >= c->start + c->cap)
                c = atomic_load_explicit(&c->next, memory_order_acquire);
            uint64_t end = c->start + c->cap < committed ? c->start + c->cap : committed;
            uint64_t k = end - cur->off < max ? end - cur->off : max;
            *p = c->data + (cur->off - c->start);
            *n = (size_t)k;
            cur->chunk = c;
            cur->off += k;
            return LV_READ_DATA;
        }
        /* The state is stored after the last bytes: once it reads COMPLETE,
         * a second look at `committed` sees them all. */
        int st = atomic_load_explicit(&b->state, memory_order_acquire);
        if (st == LV_BODY_ABORTED) return LV_READ_ABORTED;
        if (st == LV_BODY_FILLING) return LV_READ_WAIT;
        if (pass == 1) return LV_READ_END;
    }
    return LV_READ_END;
}

bool lv_cache_entry_wait(struct lv_cache_entry *e, const struct lv_cache_cursor *c,
                         struct lv_cache_waiter *w)
{
    struct lv_body *b = e->body;
    pthread_mutex_lock(&b->lock);
    bool wait = atomic_load(&b->committed) <= c->off && atomic_load(&b->state) == LV_BODY_FILLING;
    if (wait) lv_cache_waiter_arm(&b->waiters, &b->lock, w);
    pthread_mutex_unlock(&b->lock);
    return wait;
}
