/*
 * limits.max_connections: how many client connections levee holds at once,
 * all workers together (HAProxy's global maxconn), and its default derived
 * from the file descriptor limit.
 *
 * A worker reserves a slot before it accepts a connection and gives it back
 * when the connection is freed. When every slot is taken a worker stops
 * polling its listening sockets (new connections wait in the kernel's
 * backlog) and says so in `waiting`; whoever gives a slot back wakes the
 * workers that wait. No lock: the count is one atomic word.
 *
 * Lost wake-ups cannot happen: a worker that finds no room first marks
 * itself waiting, then looks at the count again; a worker that frees a slot
 * first lowers the count, then looks for waiting workers (both sequentially
 * consistent), so at least one of the two sees the other.
 */
#ifndef LV_NET_MAXCONN_H
#define LV_NET_MAXCONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Descriptors kept back from client and backend connections:
 *   fixed       stdin/out/err, the error and access logs (two of each during
 *               a reload), the main loop (epoll, async, signal pipe), the
 *               admin listener and its connections, files read on reload
 *               (configuration, certificates) and by /metrics
 *   per worker  its loop (epoll, eventfd), its Redis connection, a spare,
 *               plus one listening socket per listen address
 *   per backend one active health check connection (main thread)
 */
#define LV_FD_RESERVE_FIXED 32u
#define LV_FD_RESERVE_WORKER 4u
/* The largest limit (also the key's bound). */
#define LV_MAXCONN_MAX 10000000u

/*
 * The default of limits.max_connections for a process allowed `nofile`
 * descriptors (the soft RLIMIT_NOFILE, after levee raised it to the hard
 * one) with that many workers, listen addresses and backends: half of what
 * the reserve above leaves, because each client connection may hold a
 * backend connection (idle pooled ones were opened for earlier client
 * connections and are reused first). At least 1, at most LV_MAXCONN_MAX.
 * Pure.
 */
uint64_t lv_maxconn_auto(uint64_t nofile, unsigned workers, size_t listeners, size_t backends);

struct lv_maxconn {
    atomic_uint_fast64_t open;  /* slots taken: client connections held */
    atomic_uint_fast64_t limit; /* set at start and on reload */
    atomic_uint waiting;        /* workers paused for want of a slot */
};

/* Takes a slot if one is free (true). */
bool lv_maxconn_take(struct lv_maxconn *m);
/* Gives a slot back. Returns true if some worker waits for one: the caller
 * wakes the waiting workers then. */
bool lv_maxconn_give(struct lv_maxconn *m);
/* Is a slot free now? */
bool lv_maxconn_room(struct lv_maxconn *m);

/* A worker's waiting flag: mark (returns whether a slot turned free
 * meanwhile, in which case the flag is already cleared again and the
 * caller should try lv_maxconn_take again) and clear (returns whether it
 * was set: the one who clears it wakes that worker). */
bool lv_maxconn_wait(struct lv_maxconn *m, atomic_bool *flag);
bool lv_maxconn_unwait(struct lv_maxconn *m, atomic_bool *flag);

#endif
