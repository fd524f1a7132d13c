/*
 * The response store, shared by every worker: stored responses ("entries")
 * by primary key, several per key when they vary (RFC 9111 §4.1), bounded
 * in memory for all workers together, evicted least recently used first.
 *
 * Why one store for all workers rather than one per worker: a per-worker
 * store splits the memory N ways and every worker must miss once per key
 * (N backend fetches for each popular object, N copies of it), and
 * collapsed forwarding could not span workers. The price is a lock on the
 * lookup; it is one of 64 shard mutexes, held for a hash probe, a reference
 * count and an LRU move — bodies are read without any lock.
 *
 * Entries. An entry is a response head (status, fields), what the policy
 * computed about it (struct lv_cache_meta), its secondary key, and a body.
 * Head and meta never change once created: an update (a 304) creates a new
 * entry that shares the body and replaces the old one. Entries are
 * reference counted: the store holds one while the entry is linked (can be
 * found), each reader one more; an entry replaced, purged or evicted while
 * someone reads it stays alive (and counted in `bytes`) until the last
 * reference goes.
 *
 * Bodies are filled while the response streams in:
 *
 *   FILLING ──finish──► COMPLETE
 *      │
 *      └──abort / append fails──► ABORTED (the entry is unlinked)
 *
 * The writer (one thread) appends; any number of readers on any threads
 * read what is there and wait (lv_cache_entry_wait) for more. Bytes once
 * appended never move: a reader's pointers stay valid while it holds its
 * reference. A response known (Content-Length) to be larger than
 * max_object_size is refused before it starts; one that turns out larger
 * is aborted, and readers that joined it see ABORTED (they must end their
 * response as a truncated one, as if the origin had failed).
 *
 * Collapsed forwarding. A request that misses can claim its key: it then
 * leads the one fetch for that key, and later requests that miss wait for
 * it (lv_cache_store_claim → WAIT) until the lead inserts an entry (they
 * look up again and read it as it fills) or gives up (they go to the
 * origin themselves). A lead whose response is not storable can leave a
 * pass marker: for a while, misses on that key do not wait for each other
 * (Varnish's hit-for-miss), so an uncacheable URL never serializes its
 * requests.
 *
 * Waiters are caller-owned; their callback runs on the thread that wakes
 * them, with a store lock held: it must only signal (uv_async_send) and
 * return, and never call into the store.
 *
 * Memory: `bytes` counts every entry's block (head, keys, meta) and its
 * body's chunks, from allocation to free; an insert or append that does not
 * fit evicts least recently used entries (never one still filling) until it
 * does, and fails if it cannot.
 */
#ifndef LV_CACHE_STORE_H
#define LV_CACHE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/fields.h"
#include "cache/policy.h"

#define LV_CACHE_MAX_FIELDS 256       /* stored fields per response, at most */
#define LV_CACHE_HEAD_MAX (64 * 1024) /* bytes of stored names and values, at most */
#define LV_CACHE_MAX_VARIANTS 16      /* responses per primary key; the oldest goes */

struct lv_cache_store;
struct lv_cache_entry;
struct lv_cache_claim;

typedef void (*lv_cache_wake_cb)(void *arg);

/* A request waiting for a fetch (claim) or for body bytes (entry). Fires
 * once; arm it again to wait again. Zero it before its first use (a
 * designated initializer setting cb and arg does). */
struct lv_cache_waiter {
    lv_cache_wake_cb cb;
    void *arg;
    /* the store's */
    struct lv_cache_waiter *next, **pprev;
    pthread_mutex_t *lock; /* the lock of the list it is on, or was last on */
    bool armed;
};

/* Creates an empty store. NULL on ENOMEM. */
struct lv_cache_store *lv_cache_store_create(uint64_t max_bytes, uint64_t max_object);
/* Frees the store and what it holds. Every entry reference and claim must
 * have been given back. */
void lv_cache_store_destroy(struct lv_cache_store *s);
/* New bounds (a reload); evicts down to max_bytes. */
void lv_cache_store_set_limits(struct lv_cache_store *s, uint64_t max_bytes, uint64_t max_object);

struct lv_cache_store_stats {
    uint64_t entries;   /* responses that can be found */
    uint64_t bytes;     /* memory held, including unlinked entries still read */
    uint64_t max_bytes; /* the bound */
    uint64_t inserts;   /* entries stored so far */
    uint64_t evictions; /* entries evicted for room so far */
};
void lv_cache_store_stats(struct lv_cache_store *s, struct lv_cache_store_stats *st);

/* --- entries --------------------------------------------------------------- */

/* What an entry is made of (copied: nothing here is borrowed afterwards). */
struct lv_cache_entry_spec {
    const char *key;
    size_t key_len;
    const char *vary; /* normalized Vary names (cache/key.h), or NULL */
    size_t vary_len;
    const char *vkey; /* the secondary key for them */
    size_t vkey_len;
    uint16_t status;
    const struct lv_field *fields; /* the stored fields, in order */
    uint32_t nfields;
    struct lv_cache_meta meta;
    int64_t content_length;          /* of a new body: its length if known, else -1 */
    struct lv_cache_entry *share_of; /* share this entry's body (an update); NULL: new body */
};

/*
 * A new entry, not linked, with one reference (the caller's), its body
 * FILLING unless shared; its memory is charged now (evicting to make room).
 * NULL when the head is over LV_CACHE_MAX_FIELDS or LV_CACHE_HEAD_MAX, the
 * key over LV_CACHE_KEY_MAX, when no room can be made, or on ENOMEM.
 */
struct lv_cache_entry *lv_cache_entry_create(struct lv_cache_store *s,
                                             const struct lv_cache_entry_spec *spec);

struct lv_cache_entry *lv_cache_entry_ref(struct lv_cache_entry *e);
/* Drops a reference; the last one frees the entry (and its body when no
 * other entry shares it). Any thread. */
void lv_cache_entry_release(struct lv_cache_entry *e);

const char *lv_cache_entry_key(const struct lv_cache_entry *e, size_t *len);
uint16_t lv_cache_entry_status(const struct lv_cache_entry *e);
const struct lv_cache_meta *lv_cache_entry_meta(const struct lv_cache_entry *e);
/* The stored fields (valid while the entry is referenced). */
struct lv_fields lv_cache_entry_fields(const struct lv_cache_entry *e);
/* Vary names and secondary key; *vary_len is 0 for a response without Vary. */
void lv_cache_entry_vary(const struct lv_cache_entry *e, const char **vary, size_t *vary_len,
                         const char **vkey, size_t *vkey_len);

/* Is the entry linked (could a lookup find it now)? */
bool lv_cache_entry_linked(const struct lv_cache_entry *e);

/*
 * stale-while-revalidate's "once": true for the one caller that may start
 * a background refresh of e now (no other started one in the last
 * LV_CACHE_REFRESH_LEASE ms); lv_cache_entry_refresh_end lets the next one
 * try at once (the refresh failed).
 */
bool lv_cache_entry_refresh_begin(struct lv_cache_entry *e, int64_t now);
void lv_cache_entry_refresh_end(struct lv_cache_entry *e);

/* --- bodies: one writer ---------------------------------------------------- */

enum lv_cache_body_state { LV_BODY_FILLING, LV_BODY_COMPLETE, LV_BODY_ABORTED };

/*
 * Appends body bytes (de-chunked). Returns 0, or -1 when the body would
 * exceed max_object_size or no room can be made: the entry is then aborted
 * and unlinked (the writer stops storing; its own response goes on).
 */
int lv_cache_entry_append(struct lv_cache_store *s, struct lv_cache_entry *e, const void *p,
                          size_t n);
/* The body is complete. A body shorter than its announced Content-Length is
 * aborted instead. Returns 0, or -1 if it was aborted. */
int lv_cache_entry_finish(struct lv_cache_store *s, struct lv_cache_entry *e);
/* The response did not arrive whole: aborted and unlinked. */
void lv_cache_entry_abort(struct lv_cache_store *s, struct lv_cache_entry *e);

enum lv_cache_body_state lv_cache_entry_state(const struct lv_cache_entry *e);
/* Bytes readable now. */
uint64_t lv_cache_entry_body_len(const struct lv_cache_entry *e);
/* The body's length when known: its Content-Length, or its size once
 * complete; -1 otherwise. */
int64_t lv_cache_entry_length(const struct lv_cache_entry *e);

/* --- bodies: readers ------------------------------------------------------- */

/* Where a reader is in a body. Zero it (or lv_cache_cursor_init) to start. */
struct lv_cache_cursor {
    const void *chunk;
    uint64_t off; /* bytes read so far */
};

static inline void lv_cache_cursor_init(struct lv_cache_cursor *c)
{
    c->chunk = NULL;
    c->off = 0;
}

enum lv_cache_read {
    LV_READ_DATA,    /* *p, *n: the next bytes (valid while e is referenced); cursor moved */
    LV_READ_WAIT,    /* none yet: lv_cache_entry_wait */
    LV_READ_END,     /* complete, all read */
    LV_READ_ABORTED, /* the body will never be complete */
};

/* The next contiguous bytes after the cursor, at most max (> 0). Any
 * thread, no lock. */
enum lv_cache_read lv_cache_entry_read(const struct lv_cache_entry *e, struct lv_cache_cursor *c,
                                       size_t max, const char **p, size_t *n);

/*
 * Arms w to fire when bytes past the cursor arrive or the body ends.
 * Returns true if armed; false if there is something to read (or an end)
 * now — then w was not armed. The caller must hold its reference on e
 * until w fired or was cancelled.
 */
bool lv_cache_entry_wait(struct lv_cache_entry *e, const struct lv_cache_cursor *c,
                         struct lv_cache_waiter *w);

/* Disarms a waiter. True if it was armed (it will not fire); false if it
 * has fired already (its callback has returned) or was never armed. */
bool lv_cache_waiter_cancel(struct lv_cache_waiter *w);

/* --- lookups, collapsing, insertion ---------------------------------------- */

/* Does a stored response match the request (its Vary)? Called with a shard
 * lock held: read the entry, call nothing in the store. */
typedef bool (*lv_cache_match_cb)(const struct lv_cache_entry *e, void *arg);

struct lv_cache_found {
    struct lv_cache_entry *entry; /* the newest match, with a reference; NULL if none */
    bool key_known;               /* responses are stored under the key (vary-miss) */
};

/* Finds the newest response under key that match accepts (NULL: any), and
 * marks it used at now. Responses whose body was aborted are never found. */
void lv_cache_store_find(struct lv_cache_store *s, const char *key, size_t klen,
                         lv_cache_match_cb match, void *arg, int64_t now,
                         struct lv_cache_found *out);

enum lv_cache_claim_result {
    LV_CLAIM_LEAD,    /* *c is set: this request fetches; insert or unclaim later */
    LV_CLAIM_WAIT,    /* another request fetches the key; w armed: look up again when it fires */
    LV_CLAIM_NONE,    /* do not wait: a pass marker is live, w is NULL, or no memory */
    LV_CLAIM_CHANGED, /* the newest match is no longer `seen`: look up again */
};

/*
 * Claims the fetch of key (collapsed forwarding) for a request whose
 * lookup (with match, arg) found `seen` (NULL: nothing). The check and the
 * claim are one step under the shard lock, so a response stored between
 * the lookup and the claim is never fetched a second time: the answer is
 * then CHANGED.
 */
enum lv_cache_claim_result lv_cache_store_claim(struct lv_cache_store *s, const char *key,
                                                size_t klen, lv_cache_match_cb match, void *arg,
                                                const struct lv_cache_entry *seen, int64_t now,
                                                struct lv_cache_waiter *w,
                                                struct lv_cache_claim **c);

/* Gives a claim up without storing: waiters fire. With pass_until > now,
 * misses on the key do not wait for each other until then. */
void lv_cache_store_unclaim(struct lv_cache_store *s, struct lv_cache_claim *c, int64_t now,
                            int64_t pass_until);

/*
 * Links e (the store takes its own reference; the caller keeps its one) at
 * now. It replaces the responses under its key with the same secondary
 * key, or with other Vary names, and the key's pass marker; beyond
 * LV_CACHE_MAX_VARIANTS the oldest variant goes. c (may be NULL) is
 * consumed: its waiters fire. (The memory was charged when e was created.)
 */
void lv_cache_store_insert(struct lv_cache_store *s, struct lv_cache_claim *c,
                           struct lv_cache_entry *e, int64_t now);

/* Unlinks e if it is linked (readers keep it). */
void lv_cache_store_unlink(struct lv_cache_store *s, struct lv_cache_entry *e);

/* Unlinks every response stored under key; returns how many. */
size_t lv_cache_store_remove(struct lv_cache_store *s, const char *key, size_t klen);

/* Unlinks every response whose key starts with prefix; returns how many. */
size_t lv_cache_store_remove_prefix(struct lv_cache_store *s, const char *prefix, size_t n);

/* Calls cb for each linked response, a shard at a time, with its lock held
 * (cb must not call the store). Stops when cb returns false. */
void lv_cache_store_each(struct lv_cache_store *s,
                         bool (*cb)(const struct lv_cache_entry *e, void *arg), void *arg);

#endif
